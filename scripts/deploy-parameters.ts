/**
 * Reads an Ignition parameters file (deploy/ignition/parameters/<network>.json) the way Ignition's
 * CLI does: a decimal string ending in "n" is a bigint. Shared by scripts/deploy.ts and the tests.
 */
import { readFileSync } from "node:fs";

export type Params = Record<string, string | number | bigint | boolean | string[]>;

export function readParameters(file: string): Record<string, Params | undefined> {
  return JSON.parse(readFileSync(file, "utf8"), (_key, value: unknown) =>
    typeof value === "string" && /^\d+n$/.test(value) ? BigInt(value.slice(0, -1)) : value,
  ) as Record<string, Params | undefined>;
}

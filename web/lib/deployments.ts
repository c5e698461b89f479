/**
 * Server side only: where the contracts are. Chain 31337 comes from the file `npm start` writes
 * (.x0t/deployment.json, or X0T_DEPLOYMENT), Base Sepolia from deployments/84532.json when it
 * exists. Read at request time, so `next start` follows a restarted local chain without a rebuild.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Deployment } from "./types";

function repoRoot(): string {
  // `next start`/`next build` run in web/; the repository is its parent.
  const cwd = process.cwd();
  return existsSync(join(/*turbopackIgnore: true*/ cwd, "next.config.ts"))
    ? resolve(/*turbopackIgnore: true*/ cwd, "..")
    : cwd;
}

function readJson(path: string): Deployment | undefined {
  if (!existsSync(/*turbopackIgnore: true*/ path)) return undefined;
  try {
    const raw = JSON.parse(readFileSync(/*turbopackIgnore: true*/ path, "utf8")) as Deployment;
    if (typeof raw.chainId !== "number" || !raw.contracts) return undefined;
    return { chainId: raw.chainId, rpcUrl: raw.rpcUrl, contracts: raw.contracts };
  } catch {
    return undefined;
  }
}

export function loadDeployments(): Deployment[] {
  const root = repoRoot();
  const local =
    process.env.X0T_DEPLOYMENT ??
    join(
      /*turbopackIgnore: true*/ resolve(/*turbopackIgnore: true*/ root, process.env.X0T_STATE_DIR ?? ".x0t"),
      "deployment.json",
    );
  return [readJson(local), readJson(join(/*turbopackIgnore: true*/ root, "deployments", "84532.json"))].filter(
    (d): d is Deployment => d !== undefined,
  );
}

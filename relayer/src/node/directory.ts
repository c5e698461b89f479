/**
 * The relays a client may build circuits through. Each relay publishes a descriptor (where it
 * listens, its static public keys, whether it is an exit); a client accepts a descriptor only if
 * its keys hash to the keysHash it expects (the one in the relay's registry record, or in the
 * descriptor itself for a local directory whose files the operator controls).
 *
 * Two ways in: `readDirectory` reads unsigned descriptors from a folder the operator controls (tests,
 * `npm start`); the mesh (mesh/descriptor.ts) turns signed descriptors that a trust anchor vouched
 * for into the same `DirectoryEntry`, with the fields route choice needs (bandwidth, validity).
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { verifyPublicKeys } from "../crypto/keys.ts";
import type { HopInfo } from "../circuit/client.ts";

export interface RelayDescriptor {
  name: string;
  host: string;
  port: number;
  /** 32-byte X25519 public key, hex. */
  x25519: string;
  /** 1,184-byte ML-KEM-768 encapsulation key, base64. */
  mlkem: string;
  /** sha256(x25519 || mlkem), hex: the on-chain keysHash. */
  keysHash: string;
  exit: boolean;
  /** ISO 3166 alpha-2 region, as in the registry (route diversity). */
  region?: string;
  /** The operator's address (0x, 40 hex): whom the client's receipts for this hop pay. */
  operator?: string;
}

export interface DirectoryEntry extends HopInfo {
  name: string;
  exit: boolean;
  region: string | undefined;
  /** The operator's address, lowercase 0x-hex, when the descriptor names one (paid circuits need it). */
  operator?: `0x${string}`;
  /** Advertised bandwidth, bytes per second (signed descriptors only). */
  bandwidth?: number;
  /** Unix seconds after which the descriptor that produced this entry is no longer valid. */
  notAfter?: number;
}

export class DescriptorError extends Error {
  override name = "DescriptorError";
}

/** Validates a descriptor from an untrusted source; names the bad field. */
export function parseDescriptor(value: unknown, source: string): DirectoryEntry {
  const fail = (field: string, expected: string): never => {
    throw new DescriptorError(`${source}: "${field}" must be ${expected}`);
  };
  if (typeof value !== "object" || value === null) return fail("(root)", "an object");
  const d = value as Record<string, unknown>;
  const str = (k: string) => (typeof d[k] === "string" ? (d[k] as string) : fail(k, "a string"));
  const name = str("name");
  const host = str("host");
  const port =
    typeof d.port === "number" && Number.isInteger(d.port) && d.port > 0 && d.port < 65536
      ? d.port
      : fail("port", "an integer 1..65535");
  const x25519 = /^[0-9a-f]{64}$/.test(str("x25519"))
    ? Buffer.from(str("x25519"), "hex")
    : fail("x25519", "64 hex digits");
  const mlkem = Buffer.from(str("mlkem"), "base64");
  const keysHash = /^(0x)?[0-9a-f]{64}$/.test(str("keysHash"))
    ? Buffer.from(str("keysHash").replace(/^0x/, ""), "hex")
    : fail("keysHash", "64 hex digits");
  const exit = typeof d.exit === "boolean" ? d.exit : fail("exit", "true or false");
  const region =
    d.region === undefined
      ? undefined
      : /^[A-Z]{2}$/.test(String(d.region))
        ? String(d.region)
        : fail("region", "two capital letters");
  const operator =
    d.operator === undefined
      ? undefined
      : /^0x[0-9a-fA-F]{40}$/.test(String(d.operator))
        ? (String(d.operator).toLowerCase() as `0x${string}`)
        : fail("operator", "an address (0x and 40 hex digits)");
  let keys;
  try {
    keys = verifyPublicKeys(x25519, mlkem, keysHash);
  } catch (error) {
    throw new DescriptorError(`${source}: ${(error as Error).message}`);
  }
  return { name, host, port, keys, exit, region, operator };
}

/** Reads every *.json descriptor in `dir`. */
export function readDirectory(dir: string): DirectoryEntry[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => parseDescriptor(JSON.parse(readFileSync(join(dir, f), "utf8")) as unknown, join(dir, f)));
}

export function descriptorOf(entry: {
  name: string;
  host: string;
  port: number;
  exit: boolean;
  region?: string;
  operator?: string;
  keys: { x25519: Uint8Array; mlkem: Uint8Array; keysHash: Uint8Array };
}): RelayDescriptor {
  return {
    name: entry.name,
    host: entry.host,
    port: entry.port,
    x25519: Buffer.from(entry.keys.x25519).toString("hex"),
    mlkem: Buffer.from(entry.keys.mlkem).toString("base64"),
    keysHash: Buffer.from(entry.keys.keysHash).toString("hex"),
    exit: entry.exit,
    ...(entry.region ? { region: entry.region } : {}),
    ...(entry.operator ? { operator: entry.operator } : {}),
  };
}

/** A relay's static keys on disk: JSON with the X25519 private key and the ML-KEM seed, mode 0600. */
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { generateStaticKeys, staticKeysFromSecrets } from "../crypto/keys.ts";
import type { StaticKeys } from "../crypto/keys.ts";

export function loadOrCreateKeys(path: string): { keys: StaticKeys; created: boolean } {
  if (!existsSync(path)) {
    const keys = generateStaticKeys();
    const body = {
      version: 1,
      x25519: keys.secrets.x25519.toString("hex"),
      mlkemSeed: keys.secrets.mlkemSeed.toString("hex"),
    };
    writeFileSync(path, JSON.stringify(body, null, 2) + "\n", { mode: 0o600, flag: "wx" });
    return { keys, created: true };
  }
  if ((statSync(path).mode & 0o077) !== 0) throw new Error(`${path}: readable by others (chmod 600 ${path})`);
  const raw = JSON.parse(readFileSync(path, "utf8")) as { version?: unknown; x25519?: unknown; mlkemSeed?: unknown };
  if (raw.version !== 1 || typeof raw.x25519 !== "string" || typeof raw.mlkemSeed !== "string") {
    throw new Error(`${path}: expected {"version":1,"x25519":<64 hex>,"mlkemSeed":<128 hex>}`);
  }
  if (!/^[0-9a-f]{64}$/.test(raw.x25519) || !/^[0-9a-f]{128}$/.test(raw.mlkemSeed))
    throw new Error(`${path}: keys must be lowercase hex of 32 and 64 bytes`);
  return {
    keys: staticKeysFromSecrets({
      x25519: Buffer.from(raw.x25519, "hex"),
      mlkemSeed: Buffer.from(raw.mlkemSeed, "hex"),
    }),
    created: false,
  };
}

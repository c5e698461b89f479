/** Ethereum private keys on disk (client keys, node signers): one 0x-hex line, mode 0600. */
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { isHex, type LocalAccount } from "viem";
import { generatePrivateKey, nonceManager, privateKeyToAccount } from "viem/accounts";

export class KeyFileError extends Error {
  override name = "KeyFileError";
}

/**
 * The key in `path`; with `create`, a new one is written there (mode 0600) if the file does not
 * exist. `what` names the setting in errors (a flag or a config key).
 */
export function loadEvmKey(
  path: string,
  what: string,
  options: { create?: boolean; nonceManager?: boolean } = {},
): LocalAccount {
  if (!existsSync(path)) {
    if (!options.create) throw new KeyFileError(`${what}: ${path} does not exist`);
    writeFileSync(path, generatePrivateKey() + "\n", { mode: 0o600, flag: "wx" });
    chmodSync(path, 0o600);
  }
  if ((statSync(path).mode & 0o077) !== 0)
    throw new KeyFileError(`${what}: ${path} is readable by others (chmod 600 ${path})`);
  const text = readFileSync(path, "utf8").trim();
  if (!isHex(text) || text.length !== 66) throw new KeyFileError(`${what}: ${path} does not hold a 32-byte 0x-hex key`);
  return privateKeyToAccount(text, options.nonceManager ? { nonceManager } : undefined);
}

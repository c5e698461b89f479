/**
 * What scripts/deploy.ts checks before it sends anything, and how it words what went wrong: the
 * configuration variables (env or Hardhat's keystore), the chain behind the RPC URL, Safe 1.5's
 * canonical contracts on that chain, the deployer's funds, and a half-finished earlier run in
 * Ignition's journal. Each error is one line a person can act on; none prints a secret (the RPC
 * URL may carry an API key, so only its host is shown; the key is never shown).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  getCompatibilityFallbackHandlerDeployment,
  getProxyFactoryDeployment,
  getSafeL2SingletonDeployment,
  type SingletonDeployment,
} from "@safe-global/safe-deployments";
import { type Address, formatEther, formatGwei, getAddress, keccak256 } from "viem";
import type { CanonicalSafe } from "../deploy/ignition/modules/Treasury.js";

/** A refusal of the deploy script: `shortMessage` is what the operator reads. */
export class DeployError extends Error {
  readonly shortMessage: string;
  constructor(shortMessage: string, options?: { cause?: unknown }) {
    super(shortMessage, options);
    this.name = "DeployError";
    this.shortMessage = shortMessage;
  }
}

/** The public networks the script knows: the chain they must answer for and their variables. */
export interface PublicNetwork {
  chainId: number;
  label: string;
  rpcVariable: string;
  keyVariable: string;
  /** Public endpoint written to deployments/<chainId>.json (never the deployer's URL). */
  publicRpcUrl: string;
  explorer: string;
}

export const PUBLIC_NETWORKS: Record<string, PublicNetwork> = {
  baseSepolia: {
    chainId: 84532,
    label: "Base Sepolia",
    rpcVariable: "BASE_SEPOLIA_RPC_URL",
    keyVariable: "DEPLOYER_PRIVATE_KEY",
    publicRpcUrl: "https://sepolia.base.org",
    explorer: "https://sepolia.basescan.org",
  },
};

const KNOWN_CHAINS: Record<number, string> = {
  1: "Ethereum mainnet",
  8453: "Base mainnet",
  84532: "Base Sepolia",
  11155111: "Ethereum Sepolia",
  31337: "a local Hardhat chain",
};

export const describeChain = (chainId: number): string => KNOWN_CHAINS[chainId] ?? `chain ${chainId}`;

/** Host and port of a URL, without its path or query (where providers put API keys). */
export function hostOf(url: string | undefined): string {
  if (!url) return "(unset)";
  try {
    return new URL(url).host || "(no host)";
  } catch {
    return "(not a URL)";
  }
}

/** Hardhat's "configuration variable not found" (HHE7) and a malformed key, in the operator's words. */
export function explainConfigError(error: unknown): DeployError | undefined {
  const message = error instanceof Error ? error.message : String(error);
  const missing = /Configuration Variable "([A-Z0-9_]+)" not found/.exec(message);
  if (missing) {
    const name = missing[1] as string;
    const what = /KEY/.test(name) ? "the deployer's private key (0x + 64 hex digits)" : "a JSON-RPC URL of the chain";
    return new DeployError(
      `${name} is not set: it is ${what}. Export ${name}=… or store it with \`npx hardhat keystore set ${name}\`, then run again; nothing was sent`,
      { cause: error },
    );
  }
  if (/expected 32 bytes|invalid private key|private key must be/i.test(message))
    return new DeployError(
      `DEPLOYER_PRIVATE_KEY is not a private key: expected 0x followed by 64 hex digits (the value is not shown)`,
      { cause: error },
    );
  return undefined;
}

/** The chain behind the RPC URL must be the network's; otherwise nothing is sent. */
export function checkChain(network: string, expected: PublicNetwork | undefined, actual: number, url?: string): void {
  if (expected === undefined || expected.chainId === actual) return;
  throw new DeployError(
    `${expected.rpcVariable} (host ${hostOf(url)}) answers for ${describeChain(actual)} (chain id ${actual}), not ${expected.label} (${expected.chainId}): nothing was sent. Point ${expected.rpcVariable} at a ${expected.label} endpoint`,
  );
}

type CodeReader = { getCode(args: { address: Address }): Promise<`0x${string}` | undefined> };

/**
 * Safe 1.5's canonical SafeL2 singleton, proxy factory and fallback handler on `chainId`, as
 * @safe-global/safe-deployments lists them, each checked on-chain against the package's code hash.
 * `undefined` on a local chain (31337), where the Treasury module deploys them itself.
 */
export async function checkCanonicalSafe(client: CodeReader, chainId: number): Promise<CanonicalSafe | undefined> {
  if (chainId === 31337) return undefined;
  const filter = { version: "1.5.0", network: String(chainId) };
  const parts: [keyof CanonicalSafe, string, SingletonDeployment | undefined][] = [
    ["singleton", "SafeL2 singleton", getSafeL2SingletonDeployment(filter)],
    ["factory", "SafeProxyFactory", getProxyFactoryDeployment(filter)],
    ["handler", "CompatibilityFallbackHandler", getCompatibilityFallbackHandlerDeployment(filter)],
  ];
  const found: Partial<CanonicalSafe> = {};
  for (const [key, name, deployment] of parts) {
    const listed = deployment?.networkAddresses[String(chainId)];
    const at = Array.isArray(listed) ? listed[0] : listed;
    if (!deployment || !at)
      throw new DeployError(
        `Safe 1.5 has no canonical ${name} listed for ${describeChain(chainId)} in @safe-global/safe-deployments: nothing was sent`,
      );
    const type = Object.values(deployment.deployments).find((d) => d?.address.toLowerCase() === at.toLowerCase());
    const code = await client.getCode({ address: at as Address });
    if (!code || code === "0x")
      throw new DeployError(
        `Safe 1.5's canonical ${name} is not deployed at ${at} on ${describeChain(chainId)}: nothing was sent (is this the right chain?)`,
      );
    if (type?.codeHash && keccak256(code) !== type.codeHash)
      throw new DeployError(
        `the code at ${at} on ${describeChain(chainId)} is not Safe 1.5's ${name} (code hash ${keccak256(code)}, expected ${type.codeHash}): nothing was sent`,
      );
    found[key] = getAddress(at);
  }
  return found as CanonicalSafe;
}

/**
 * Gas of a whole deployment (Treasury + Governance modules with the canonical Safe), rounded up
 * from test/ops/deploy.test.ts's measurement, which fails when a run uses more.
 */
export const DEPLOYMENT_GAS = 32_000_000n;

/**
 * Refuses a deployer that cannot pay: no ETH at all, or (on a fresh run) less than the whole
 * deployment at today's fee. A resumed run needs less, so it only refuses an empty account.
 */
export function checkFunds(args: {
  label: string;
  keyVariable: string;
  deployer: Address;
  balance: bigint;
  maxFeePerGas: bigint;
  resuming: boolean;
}): { needed: bigint } {
  const needed = DEPLOYMENT_GAS * args.maxFeePerGas;
  const at = `${formatGwei(args.maxFeePerGas)} gwei`;
  if (args.balance === 0n)
    throw new DeployError(
      `the deployer ${args.deployer} (${args.keyVariable}) holds no ETH on ${args.label}: send it at least ${formatEther(needed)} ETH (${DEPLOYMENT_GAS} gas at ${at}), then run again; nothing was sent`,
    );
  if (!args.resuming && args.balance < needed)
    throw new DeployError(
      `the deployer ${args.deployer} (${args.keyVariable}) holds ${formatEther(args.balance)} ETH on ${args.label}; the deployment needs about ${formatEther(needed)} ETH (${DEPLOYMENT_GAS} gas at ${at}): fund it, then run again; nothing was sent`,
    );
  return { needed };
}

/** What Ignition's journal of `deploymentId` says: nothing yet, or the futures already done. */
export function journalProgress(
  ignitionDir: string,
  deploymentId: string,
): { dir: string; deployed: Record<string, string> } | undefined {
  const dir = join(ignitionDir, "deployments", deploymentId);
  if (!existsSync(join(dir, "journal.jsonl"))) return undefined;
  const file = join(dir, "deployed_addresses.json");
  const deployed = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, string>) : {};
  return { dir, deployed };
}

/** The first block of the deployment: the lowest block of any receipt in Ignition's journal. */
export function firstBlockOf(journalDir: string): number | undefined {
  const file = join(journalDir, "journal.jsonl");
  if (!existsSync(file)) return undefined;
  let first: number | undefined;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /"blockNumber":\s*(\d+)/.exec(line);
    if (m) first = Math.min(first ?? Infinity, Number(m[1]));
  }
  return first;
}

/** Ignition's and the node's failures that the operator can fix, in words; the rest as they are. */
export function explainDeployError(
  error: unknown,
  ctx: { journalDir: string; keyVariable: string },
): DeployError | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (/insufficient funds|sender doesn't have enough funds/i.test(message))
    return new DeployError(
      `the deployer ran out of ETH mid-deployment: fund the account of ${ctx.keyVariable} and run the same command again — Ignition resumes from ${ctx.journalDir}`,
      { cause: error },
    );
  if (/reconciliation failed|IGN(40[0-9]|41[0-9])/i.test(message) && /reconcil|changed|modified/i.test(message))
    return new DeployError(
      `the half-finished deployment in ${ctx.journalDir} was started with other parameters or modules: restore them and run again to resume (or move that folder away to start a new deployment):\n${message}`,
      { cause: error },
    );
  return undefined;
}

/**
 * A send that failed after Ignition journaled it (TRANSACTION_PREPARE_SEND with no
 * TRANSACTION_SEND, e.g. "insufficient funds" when the account ran dry) makes every later resume
 * stop with HHE10410 "transaction lost … use track-tx", though there is no transaction to track.
 * When the chain proves the nonce was never used — the account's pending nonce is still at or below
 * it — the record is dropped, so that Ignition prepares and sends that transaction again. Returns
 * what was dropped; leaves the journal alone otherwise (then Ignition's own message stands).
 */
export function dropUnsentTransactions(
  journalDir: string,
  pendingNonce: number,
): { futureId: string; nonce: number }[] {
  const file = join(journalDir, "journal.jsonl");
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, "utf8").split("\n");
  type Entry = { type?: string; futureId?: string; networkInteractionId?: number; nonce?: number };
  const entries = lines.map((line) => (line.trim() === "" ? undefined : (JSON.parse(line) as Entry)));
  const sent = new Set(
    entries.filter((e) => e?.type === "TRANSACTION_SEND").map((e) => `${e!.futureId}#${e!.networkInteractionId}`),
  );
  const unsent = new Set<number>();
  entries.forEach((e, i) => {
    if (e?.type === "TRANSACTION_PREPARE_SEND" && !sent.has(`${e.futureId}#${e.networkInteractionId}`)) unsent.add(i);
  });
  if (unsent.size === 0) return [];
  const dropped = [...unsent].map((i) => ({ futureId: entries[i]!.futureId!, nonce: entries[i]!.nonce! }));
  if (dropped.some((d) => d.nonce < pendingNonce)) return [];
  writeFileSync(file, lines.filter((_, i) => !unsent.has(i)).join("\n"));
  return dropped;
}

/**
 * Sending a relay's transactions so that they land: a transaction that sits unmined for
 * `afterBlocks` blocks (its fees fell below what blocks take) is replaced — same nonce, same
 * call, fees raised by `bumpPercent` and at least to the current estimate — up to `maxBumps`
 * times and never above `maxFeePerGas`. Every hash is handed to `onHash` before anything waits on
 * it, so that a crash between a replacement and its receipt leaves every candidate in the store;
 * whichever of them is mined is the outcome (only one can be: they share a nonce).
 *
 * Geth, Reth and Hardhat take a replacement only if both fee fields rise by at least 10%; the
 * default bump is 25%.
 */
import {
  type Abi,
  type Account,
  type Address,
  type Chain,
  encodeFunctionData,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
  type Transport,
  type WalletClient,
} from "viem";
import type { NonceManager } from "viem";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { ChainError } from "./errors.ts";

export interface BumpPolicy {
  /** Blocks a transaction may wait unmined before it is replaced (default 3). */
  afterBlocks?: number;
  /** Raise of both fee fields per replacement, percent (default 25; at least 10 is required by nodes). */
  bumpPercent?: number;
  /** Replacements at most (default 5). */
  maxBumps?: number;
  /** Never offer more than this per gas (wei); default: no cap. */
  maxFeePerGas?: bigint;
  /** Give up waiting after this long (default 120 s); the hashes stay known to the caller. */
  timeoutMs?: number;
  /** How often the chain is polled (default 500 ms). */
  pollMs?: number;
}

export interface ContractCall {
  address: Address;
  abi: Abi;
  functionName: string;
  args: readonly unknown[];
}

export interface SendClients {
  public: PublicClient;
  wallet: WalletClient<Transport, Chain | undefined, Account>;
}

export class TransactionTimeoutError extends ChainError {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The receipt of the first of `hashes` the chain has mined, or null while none is. */
export async function minedReceipt(client: PublicClient, hashes: readonly Hex[]): Promise<TransactionReceipt | null> {
  for (const hash of hashes) {
    const receipt = await client.getTransactionReceipt({ hash }).catch((error: unknown) => {
      if (error instanceof TransactionReceiptNotFoundError) return null;
      throw error;
    });
    if (receipt) return receipt;
  }
  return null;
}

/** What every candidate of one nonce shares; fees are what replacements raise. */
interface Candidate {
  to: Address;
  data: Hex;
  gas: bigint;
  nonce: number;
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}

/**
 * Sends `call` and waits for it to be mined, replacing it with higher fees while it waits (see the
 * module comment). Resolves with the mined receipt (success or revert: the caller reads its
 * status); rejects if nothing could be sent, or with TransactionTimeoutError after `timeoutMs`.
 */
export async function sendWithBumps(
  clients: SendClients,
  call: ContractCall,
  onHash: (hash: Hex) => void,
  policy: BumpPolicy = {},
  log: Logger = silentLogger,
): Promise<TransactionReceipt> {
  const wallet = clients.wallet;
  const data = encodeFunctionData({ abi: call.abi, functionName: call.functionName, args: call.args });
  // The nonce is taken once here and kept by every replacement. With the account's nonce manager
  // (node/evmkey.ts) every transaction of the relay, whichever duty sends it, gets its own nonce;
  // viem uses the manager in a prepare only when it is passed explicitly.
  const manager = (wallet.account as { nonceManager?: NonceManager }).nonceManager;
  const release = async (nonce?: number) =>
    manager?.reset({ address: wallet.account.address, chainId: await clients.public.getChainId(), nonce });
  let prepared;
  try {
    prepared = await wallet.prepareTransactionRequest({
      account: wallet.account,
      chain: wallet.chain ?? null,
      to: call.address,
      data,
      type: "eip1559",
      ...(manager ? { nonceManager: manager } : {}),
    });
  } catch (error) {
    await release(); // a nonce may have been taken before the estimate failed
    throw error;
  }
  const candidate: Candidate = {
    to: call.address,
    data,
    gas: prepared.gas as bigint,
    nonce: prepared.nonce as number,
    maxFeePerGas: prepared.maxFeePerGas as bigint,
    maxPriorityFeePerGas: prepared.maxPriorityFeePerGas as bigint,
  };
  const cap = policy.maxFeePerGas;
  if (cap !== undefined && candidate.maxFeePerGas > cap) candidate.maxFeePerGas = cap;
  if (candidate.maxPriorityFeePerGas > candidate.maxFeePerGas) candidate.maxPriorityFeePerGas = candidate.maxFeePerGas;
  let first: Hex;
  try {
    first = await sendCandidate(clients, candidate);
  } catch (error) {
    // The nonce taken was not used (or the node's answer was lost): the next send asks the node.
    await release(candidate.nonce);
    throw error;
  }
  const hashes = [first];
  onHash(first);
  return drive(clients, candidate, hashes, onHash, policy, log);
}

/**
 * After a restart: what became of a transaction known only by the hashes sent for its nonce. The
 * mined one's receipt; or, while one is still waiting in the mempool, the same replacement
 * schedule as `sendWithBumps` from where it stands; or null if the node knows none of them
 * (dropped, or never sent): the caller sends the call again.
 */
export async function resumeWithBumps(
  clients: SendClients,
  hashes: readonly Hex[],
  onHash: (hash: Hex) => void,
  policy: BumpPolicy = {},
  log: Logger = silentLogger,
): Promise<TransactionReceipt | null> {
  const mined = await minedReceipt(clients.public, hashes);
  if (mined) return mined;
  for (const hash of [...hashes].reverse()) {
    // Only "not found" means the node dropped it; any other RPC error ends the round (retried).
    const tx = await clients.public.getTransaction({ hash }).catch((error: unknown) => {
      if (error instanceof TransactionNotFoundError) return null;
      throw error;
    });
    if (!tx || tx.to === null || tx.maxFeePerGas === undefined || tx.maxPriorityFeePerGas === undefined) continue;
    const candidate: Candidate = {
      to: tx.to,
      data: tx.input,
      gas: tx.gas,
      nonce: tx.nonce,
      maxFeePerGas: tx.maxFeePerGas,
      maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
    };
    return drive(clients, candidate, [...hashes], onHash, policy, log);
  }
  return null;
}

function sendCandidate(clients: SendClients, c: Candidate): Promise<Hex> {
  return clients.wallet.sendTransaction({
    account: clients.wallet.account,
    chain: clients.wallet.chain ?? null,
    to: c.to,
    data: c.data,
    gas: c.gas,
    nonce: c.nonce,
    type: "eip1559",
    maxFeePerGas: c.maxFeePerGas,
    maxPriorityFeePerGas: c.maxPriorityFeePerGas,
  });
}

async function drive(
  clients: SendClients,
  candidate: Candidate,
  hashes: Hex[],
  onHash: (hash: Hex) => void,
  policy: BumpPolicy,
  log: Logger,
): Promise<TransactionReceipt> {
  const afterBlocks = BigInt(policy.afterBlocks ?? 3);
  const bump = BigInt(100 + (policy.bumpPercent ?? 25));
  const maxBumps = policy.maxBumps ?? 5;
  const cap = policy.maxFeePerGas;
  const timeoutMs = policy.timeoutMs ?? 120_000;
  const pollMs = policy.pollMs ?? 500;
  let sentAt = await clients.public.getBlockNumber();
  let bumps = 0;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const receipt = await minedReceipt(clients.public, hashes);
    if (receipt) return receipt;
    const block = await clients.public.getBlockNumber();
    if (block - sentAt >= afterBlocks && bumps < maxBumps && (cap === undefined || candidate.maxFeePerGas < cap)) {
      const estimate = await clients.public.estimateFeesPerGas({ chain: null, type: "eip1559" });
      let nextMax = (candidate.maxFeePerGas * bump) / 100n;
      let nextTip = (candidate.maxPriorityFeePerGas * bump) / 100n;
      if (estimate.maxFeePerGas > nextMax) nextMax = estimate.maxFeePerGas;
      if (estimate.maxPriorityFeePerGas > nextTip) nextTip = estimate.maxPriorityFeePerGas;
      if (cap !== undefined && nextMax > cap) nextMax = cap;
      if (nextTip > nextMax) nextTip = nextMax;
      const next = { ...candidate, maxFeePerGas: nextMax, maxPriorityFeePerGas: nextTip };
      bumps++;
      sentAt = block;
      try {
        const hash = await sendCandidate(clients, next);
        hashes.push(hash);
        onHash(hash);
        log.info("transaction replaced with higher fees", {
          nonce: candidate.nonce,
          tx: hash,
          replaces: hashes[hashes.length - 2],
          maxFeePerGas: nextMax.toString(),
          was: candidate.maxFeePerGas.toString(),
        });
        Object.assign(candidate, next);
      } catch (error) {
        // "nonce too low": an earlier candidate was mined meanwhile (the next poll finds it);
        // anything else (underpriced, RPC hiccup): keep waiting on what was sent.
        log.warn("replacement not sent", { nonce: candidate.nonce, error: (error as Error).message.split("\n")[0] });
      }
    }
    await sleep(pollMs);
  }
  throw new TransactionTimeoutError(
    `no transaction of nonce ${candidate.nonce} mined within ${timeoutMs} ms (sent: ${hashes.join(", ")})`,
  );
}

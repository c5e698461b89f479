/**
 * Settlement of a relay's receipts: after an epoch ends, send the payers' latest receipts to
 * EpochRewards in batches, read what the chain made of each, and claim rewards once epochs are
 * final. Crash-safe through the AccountingStore: a batch is recorded before it is sent and checked
 * again after a restart; sending one twice costs gas but never pays twice (receipts are cumulative
 * per channel and the contract pays only what is new).
 */
import {
  type Account,
  type Address,
  BaseError,
  type Chain,
  ContractFunctionRevertedError,
  decodeErrorResult,
  type Hex,
  parseEventLogs,
  type PublicClient,
  type TransactionReceipt,
  TransactionReceiptNotFoundError,
  type Transport,
  type WalletClient,
} from "viem";
import type { Logger } from "../log.ts";
import { type BumpPolicy, resumeWithBumps, sendWithBumps } from "./send.ts";
import { getEip712Domain } from "viem/actions";
import { withRecoveredParity } from "../accounting/client-keys.ts";
import type { Eip712Domain } from "../accounting/receipts.ts";
import type { AccountingStore, ReceiptOutcome } from "../accounting/store.ts";
import { bandwidthCreditAbi, epochRewardsAbi } from "./abi.ts";
import { ChainError } from "./errors.ts";

/** Most receipts in one batch: ~23k gas each keeps a batch well under a block's gas limit. */
export const MAX_BATCH = 200;

/** Custom errors after which the same receipt may be paid later (the payer tops up its lock). */
const RETRYABLE = new Set(["InsufficientCredit"]);
/** The receipt was already paid by an earlier copy: nothing left to do. */
const SETTLED = new Set(["NothingNewToPay"]);

/**
 * The steps of a submission, in order, for callers that watch them (logs, metrics, and the tests
 * that kill a relay process at each): the batch is recorded; its transaction was handed to the
 * RPC; its hash is recorded; its outcome is recorded.
 */
export type SettlementStep = "batch-recorded" | "tx-sent" | "hash-recorded" | "outcome-recorded";
export type OnSettlementStep = (step: SettlementStep, batchId: number) => void;

export interface SettlementClients {
  public: PublicClient;
  wallet: WalletClient<Transport, Chain | undefined, Account>;
  rewards: Address;
  /** When a stuck transaction is replaced with higher fees (chain/send.ts; defaults there). */
  bumps?: BumpPolicy;
  /** Where replacements are logged. */
  logger?: Logger;
}

export class SettlementError extends ChainError {}

export interface EpochSettlement {
  epoch: bigint;
  batches: number;
  paid: number;
  settled: number;
  retry: number;
  refused: number;
}

/** What each key's receipt became, from the batch transaction's ReceiptRejected events. */
function outcomesOf(keys: readonly Address[], logs: readonly { args: { key?: Address; reason?: Hex } }[]) {
  const outcomes = new Map<string, ReceiptOutcome>();
  for (const key of keys) outcomes.set(key.toLowerCase(), { kind: "paid" });
  for (const log of logs) {
    const key = log.args.key?.toLowerCase();
    if (!key || !log.args.reason) continue;
    let name: string;
    try {
      name = decodeErrorResult({ abi: [...epochRewardsAbi, ...bandwidthCreditAbi], data: log.args.reason }).errorName;
    } catch {
      // An undecodable reason (e.g. the consume call ran out of gas): treat as retryable.
      name = "InsufficientCredit";
    }
    const kind = SETTLED.has(name) ? "settled" : RETRYABLE.has(name) ? "retry" : "refused";
    outcomes.set(key, kind === "settled" ? { kind } : { kind, reason: name });
  }
  return outcomes;
}

/** Records what the chain did with the batch, from the receipt of its mined transaction. */
function record(store: AccountingStore, batchId: number, receipt: TransactionReceipt) {
  if (receipt.status !== "success") {
    store.markFailed(batchId, `transaction ${receipt.transactionHash} reverted`);
    return null;
  }
  const logs = parseEventLogs({ abi: epochRewardsAbi, logs: receipt.logs, eventName: "ReceiptRejected" });
  const outcomes = outcomesOf(store.batch(batchId).keys, logs);
  store.markConfirmed(batchId, outcomes, receipt.blockNumber);
  return outcomes;
}

/** How many blocks back a confirmed batch is checked again for a reorg (Base: a few seconds). */
export const REORG_DEPTH = 64n;

/**
 * Checks the batches confirmed in the last `depth` blocks against the chain: one that a reorg took
 * out (its transaction is unknown now) goes back to the queue, and its receipts are sent again
 * (paid once: the contract pays only what is new on each channel). One mined again in another
 * block is recorded with that block's outcome. Returns how many were re-queued.
 */
export async function recheckRecent(
  store: AccountingStore,
  clients: SettlementClients,
  depth = REORG_DEPTH,
): Promise<number> {
  const head = await clients.public.getBlockNumber();
  let requeued = 0;
  for (const batch of store.confirmedSince(head > depth ? head - depth : 0n)) {
    if (batch.txHash === null) continue;
    // Only "no such receipt" means the reorg took it; any other RPC error ends the round (retried).
    const receipt = await clients.public.getTransactionReceipt({ hash: batch.txHash }).catch((error: unknown) => {
      if (error instanceof TransactionReceiptNotFoundError) return null;
      throw error;
    });
    if (receipt === null) {
      store.markReorged(batch.id, `reorged out: ${batch.txHash} is no longer in the chain`);
      requeued++;
    } else if (receipt.status !== "success") {
      store.markReorged(batch.id, `transaction ${batch.txHash} reverted when mined again`);
      requeued++;
    } else {
      const logs = parseEventLogs({ abi: epochRewardsAbi, logs: receipt.logs, eventName: "ReceiptRejected" });
      store.markConfirmed(batch.id, outcomesOf(batch.keys, logs), receipt.blockNumber);
    }
  }
  return requeued;
}

/**
 * Finishes what a crash or an outage left: batches recorded but not confirmed. A batch whose hash
 * is known is awaited; one that may never have reached the RPC is marked failed, so that its
 * receipts are sent again (harmless if it did land: the contract pays only what is new).
 */
export async function recoverBatches(store: AccountingStore, clients: SettlementClients): Promise<number> {
  const unfinished = store.unfinishedBatches();
  for (const batch of unfinished) {
    if (batch.txHashes.length === 0) {
      store.markFailed(batch.id, "interrupted before its transaction was sent");
      continue;
    }
    // Mined: its outcome. Still waiting in the mempool: replaced with higher fees until it is.
    const receipt = await resumeWithBumps(
      clients,
      batch.txHashes,
      (hash) => store.markSent(batch.id, hash),
      clients.bumps,
      clients.logger,
    );
    // Unknown to the node (dropped, or a reorg took it out): send the receipts again.
    if (receipt === null) store.markFailed(batch.id, `not found: ${batch.txHashes.join(", ")}`);
    else record(store, batch.id, receipt);
  }
  return unfinished.length;
}

const domains = new Map<string, Promise<Eip712Domain>>();

/** EpochRewards' EIP-712 domain, as the contract reports it (ERC-5267), read once per contract. */
function receiptDomainOf(clients: SettlementClients): Promise<Eip712Domain> {
  const id = clients.rewards.toLowerCase();
  const held = domains.get(id);
  if (held) return held;
  const domain: Promise<Eip712Domain> = getEip712Domain(clients.public, { address: clients.rewards }).then(
    ({ domain: d }) => ({
      name: d.name,
      version: d.version,
      chainId: Number(d.chainId),
      verifyingContract: d.verifyingContract,
    }),
  );
  domain.catch(() => domains.delete(id));
  domains.set(id, domain);
  return domain;
}

/**
 * Sends `relayer`'s queued receipts of `epoch` in batches of at most MAX_BATCH and records the
 * outcome of each. Call it in the epoch after `epoch` (and again later in the window for receipts
 * that came late or asked for a retry).
 */
export async function submitEpoch(
  store: AccountingStore,
  clients: SettlementClients,
  relayer: Address,
  epoch: bigint,
  onStep: OnSettlementStep = () => {},
): Promise<EpochSettlement> {
  const result: EpochSettlement = { epoch, batches: 0, paid: 0, settled: 0, retry: 0, refused: 0 };
  const queued = store.queued(epoch);
  const domain = queued.length > 0 ? await receiptDomainOf(clients) : undefined;
  for (let start = 0; start < queued.length; start += MAX_BATCH) {
    // Receipts verified natively were never checked for their recovery bit: set it from the key.
    const chunk = await Promise.all(
      queued.slice(start, start + MAX_BATCH).map((r) => withRecoveredParity(domain!, relayer, epoch, r)),
    );
    const args = [
      relayer,
      epoch,
      chunk.map(({ key, cells, bytes_, r, vs }) => ({ key, cells, bytes_, r, vs })),
    ] as const;
    // Simulate first: a revert here (window closed, relayer inactive) is the relayer's to fix and
    // changes nothing on-chain.
    try {
      await clients.public.simulateContract({
        address: clients.rewards,
        abi: epochRewardsAbi,
        functionName: "submitReceipts",
        args,
        account: clients.wallet.account,
      });
    } catch (cause) {
      throw new SettlementError(`submitReceipts for epoch ${epoch} would revert: ${revertName(cause)}`, { cause });
    }
    const batchId = store.beginBatch(
      epoch,
      chunk.map((r) => r.key),
    );
    onStep("batch-recorded", batchId);
    let first = true;
    const onHash = (hash: Hex) => {
      if (first) onStep("tx-sent", batchId);
      store.markSent(batchId, hash);
      if (first) onStep("hash-recorded", batchId);
      first = false;
    };
    let receipt: TransactionReceipt;
    try {
      receipt = await sendWithBumps(
        clients,
        { address: clients.rewards, abi: epochRewardsAbi, functionName: "submitReceipts", args },
        onHash,
        clients.bumps,
        clients.logger,
      );
    } catch (cause) {
      // Nothing sent: the receipts go back to the queue. Sent but not mined in time: the batch
      // stays "sent" and the next round's recovery follows (and bumps) its transaction.
      if (first) store.markFailed(batchId, `not sent: ${revertName(cause)}`);
      throw new SettlementError(`could not land the batch for epoch ${epoch}: ${revertName(cause)}`, { cause });
    }
    const outcomes = record(store, batchId, receipt);
    onStep("outcome-recorded", batchId);
    result.batches++;
    if (!outcomes) continue;
    for (const outcome of outcomes.values()) result[outcome.kind]++;
  }
  return result;
}

/** Claims `relayer`'s rewards for `epochs` (final, unclaimed); returns the X0T minted. */
export async function claimRewards(
  clients: SettlementClients,
  relayer: Address,
  epochs: readonly bigint[],
): Promise<{ hash: Hex; minted: bigint }> {
  // A claim lost to a crash is harmless: the contract skips epochs already claimed.
  const receipt = await sendWithBumps(
    clients,
    { address: clients.rewards, abi: epochRewardsAbi, functionName: "claim", args: [relayer, [...epochs]] },
    () => {},
    clients.bumps,
    clients.logger,
  );
  const hash = receipt.transactionHash;
  if (receipt.status !== "success") throw new SettlementError(`claim transaction ${hash} reverted`);
  const logs = parseEventLogs({ abi: epochRewardsAbi, logs: receipt.logs, eventName: "RewardClaimed" });
  return { hash, minted: logs.reduce((sum, log) => sum + log.args.amount, 0n) };
}

/** The custom error name of a revert, or the error's one-line message. */
export function revertName(error: unknown): string {
  if (error instanceof BaseError) {
    const revert = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revert instanceof ContractFunctionRevertedError) return revert.data?.errorName ?? revert.shortMessage;
    return error.shortMessage;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Whether `epoch`'s submission window has closed (nothing for it is accepted any more). */
export async function receiptsClosed(clients: Pick<SettlementClients, "public" | "rewards">, epoch: bigint) {
  const [closed] = await clients.public.readContract({
    address: clients.rewards,
    abi: epochRewardsAbi,
    functionName: "receiptsClosed",
    args: [epoch],
  });
  return closed;
}

export interface SettleReport {
  currentEpoch: bigint;
  recovered: number;
  /** Confirmed batches a reorg took out, queued again. */
  reorged: number;
  submitted: EpochSettlement[];
  abandoned: { epoch: bigint; receipts: number }[];
}

/**
 * One round of a relay's settlement: re-queue batches a reorg took out, finish batches a crash left, submit every epoch that has
 * queued receipts and is still inside its window, and give up (with a reason in the store) on the
 * ones whose window closed. Safe to run at any time and as often as wanted; a relay runs it at
 * each epoch start and again a few times within the window.
 */
export async function settleOnce(
  store: AccountingStore,
  clients: SettlementClients,
  relayer: Address,
  onStep?: OnSettlementStep,
): Promise<SettleReport> {
  const reorged = await recheckRecent(store, clients);
  const recovered = await recoverBatches(store, clients);
  const currentEpoch = await clients.public.readContract({
    address: clients.rewards,
    abi: epochRewardsAbi,
    functionName: "currentEpoch",
  });
  const report: SettleReport = { currentEpoch, recovered, reorged, submitted: [], abandoned: [] };
  for (const epoch of store.queuedEpochs()) {
    if (epoch >= currentEpoch) continue; // still running
    if (await receiptsClosed(clients, epoch)) {
      report.abandoned.push({ epoch, receipts: store.abandon(epoch, "submission window closed") });
      continue;
    }
    report.submitted.push(await submitEpoch(store, clients, relayer, epoch, onStep));
  }
  return report;
}

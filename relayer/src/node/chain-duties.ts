/**
 * What a paid relay does on-chain while it runs, with its node's signer key (the hot key the
 * registry lets submit for the operator; the operator's own key stays offline):
 *
 * - lands its payers' signed lock requests (PAY_LOCK) with `openLocks`, in small batches, after
 *   checking each one (minimum size, signature, rate per key, a simulation of the batch) so that a
 *   hostile payer cannot make it burn gas on requests the contract would refuse (`lock-landing.ts`);
 * - settles: every `settleEveryMs`, one `settleOnce` round (finish what a crash left, submit
 *   finished epochs' receipts, give up on closed windows) — an RPC outage only delays a round;
 * - claims the uptime bonus of each ended epoch once k other relays' attestations are held
 *   (chain/uptime.ts);
 * - claims its rewards once the final epochs' pending rewards reach `claimAboveWei`.
 *
 * Every transaction is replaced with higher fees while it waits unmined (chain/send.ts).
 *
 * See docs/settlement.md.
 */
import type { Address } from "viem";
import type { AccountingStore } from "../accounting/store.ts";
import type { Eip712Domain } from "../accounting/receipts.ts";
import { epochRewardsAbi } from "../chain/abi.ts";
import type { ChannelReader } from "../chain/reader.ts";
import {
  claimRewards,
  receiptsClosed,
  type OnSettlementStep,
  revertName,
  type SettlementClients,
  settleOnce,
} from "../chain/settlement.ts";
import { submitUptimeDue } from "../chain/uptime.ts";
import type { Logger } from "../log.ts";
import type { PayLock } from "../wire/payment.ts";
import type { NodeMetrics } from "../metrics/index.ts";
import { startLockLanding } from "./lock-landing.ts";

export interface ChainDutiesOptions {
  store: AccountingStore;
  clients: SettlementClients & { credit: Address };
  /** The operator address the relay is registered under (whom receipts pay). */
  relayer: Address;
  reader: ChannelReader;
  creditDomain: Eip712Domain;
  /** Settlement round interval (default 30 s). */
  settleEveryMs?: number;
  /** Claim automatically once pending rewards of final epochs reach this (wei); null: never. */
  claimAboveWei?: bigint | null;
  /** How far back a claim looks for unclaimed epochs (default 48). */
  claimLookback?: bigint;
  /** Keys with a lock request waiting to land, at most (default 256): more are dropped with a log line. */
  maxPendingLocks?: number;
  /** Smallest lock request landed, bytes (default 1 MiB). */
  minLockBytes?: bigint;
  /** Lock requests a key may land at once, and how often it gets one more (default 4, 5 s). */
  lockBurst?: number;
  lockRefillMs?: number;
  /** How often waiting lock requests are landed (default 500 ms). */
  lockEveryMs?: number;
  /** Clock of the lock rate (ms). */
  now?: () => number;
  logger: Logger;
  onStep?: OnSettlementStep;
  /** Prometheus metrics: batches and submitted receipts, lock requests, chain errors. */
  metrics?: NodeMetrics;
}

export interface ChainDuties {
  /** A payer's node asked for a lock (PAY_LOCK); checked and landed in a next batch. Resolves once queued or refused. */
  requestLock(lock: PayLock): Promise<void>;
  /** One settlement round now (also what the timer runs); resolves when it is done. */
  settle(): Promise<void>;
  /** Lands a batch of the waiting lock requests now. */
  flushLocks(): Promise<void>;
  close(): Promise<void>;
}

export function startChainDuties(o: ChainDutiesOptions): ChainDuties {
  const log = o.logger;
  const locks = startLockLanding({
    clients: o.clients,
    relayer: o.relayer,
    reader: o.reader,
    creditDomain: o.creditDomain,
    minLockBytes: o.minLockBytes,
    burst: o.lockBurst,
    refillMs: o.lockRefillMs,
    maxPending: o.maxPendingLocks,
    logger: log,
    metrics: o.metrics,
    now: o.now,
  });
  let settling: Promise<void> | undefined;
  let closed = false;

  const settle = async () => {
    if (settling) return settling;
    settling = (async () => {
      try {
        const report = await settleOnce(o.store, o.clients, o.relayer, o.onStep);
        for (const s of report.submitted) {
          for (let i = 0; i < s.batches; i++) o.metrics?.batch("confirmed");
          for (let i = 0; i < s.paid + s.settled; i++) o.metrics?.receipt("submitted");
        }
        for (const s of report.submitted)
          log.info("epoch settled", {
            epoch: s.epoch,
            batches: s.batches,
            paid: s.paid,
            settled: s.settled,
            retry: s.retry,
            refused: s.refused,
          });
        for (const a of report.abandoned)
          log.warn("epoch abandoned: submission window closed", { epoch: a.epoch, receipts: a.receipts });
        for (const u of await submitUptimeDue(o.store, o.clients, o.relayer, report.currentEpoch)) {
          if (u.kind === "attested")
            log.info("uptime bonus claimed", { epoch: u.epoch, attesters: u.attesters, tx: u.tx });
          else if (u.kind === "waiting")
            log.debug("uptime bonus waiting for attestations", { epoch: u.epoch, usable: u.usable, needed: u.needed });
          else if (u.kind === "failed" || u.kind === "abandoned")
            log.warn("uptime bonus not claimed", { epoch: u.epoch, reason: u.reason });
        }
        if (o.claimAboveWei !== null && o.claimAboveWei !== undefined) await claimIfDue(report.currentEpoch);
      } catch (error) {
        o.metrics?.error("chain");
        log.warn("settlement round failed; next round retries", { error: revertName(error) });
      }
    })().finally(() => (settling = undefined));
    return settling;
  };

  const claimIfDue = async (current: bigint) => {
    const lookback = o.claimLookback ?? 48n;
    const epochs: bigint[] = [];
    let total = 0n;
    for (let e = current > lookback ? current - lookback : 0n; e < current; e++) {
      if (!(await receiptsClosed(o.clients, e))) continue;
      const pendingReward = await o.clients.public.readContract({
        address: o.clients.rewards,
        abi: epochRewardsAbi,
        functionName: "pendingReward",
        args: [e, o.relayer],
      });
      if (pendingReward === 0n) continue;
      epochs.push(e);
      total += pendingReward;
    }
    if (epochs.length === 0 || total < (o.claimAboveWei ?? 0n)) return;
    const { hash, minted } = await claimRewards(o.clients, o.relayer, epochs);
    log.info("rewards claimed", { tx: hash, epochs: epochs.join(","), minted });
  };

  const settleTimer = setInterval(() => void settle(), o.settleEveryMs ?? 30_000);
  const lockTimer = setInterval(
    () => void locks.flushLocks().catch((error: Error) => log.warn("lock landing failed", { error: error.message })),
    o.lockEveryMs ?? 500,
  );
  // Receipts are committed to the WAL as they arrive; this puts them on the disk (store.ts).
  const syncTimer = setInterval(() => {
    try {
      o.store.checkpoint();
    } catch (error) {
      log.warn("accounting checkpoint failed", { error: (error as Error).message });
    }
  }, 2_000);
  settleTimer.unref();
  lockTimer.unref();
  syncTimer.unref();

  return {
    requestLock: (lock) => (closed ? Promise.resolve() : locks.requestLock(lock)),
    settle,
    flushLocks: () => locks.flushLocks(),
    async close() {
      closed = true;
      clearInterval(settleTimer);
      clearInterval(lockTimer);
      clearInterval(syncTimer);
      await locks.close();
      await settling;
    },
  };
}

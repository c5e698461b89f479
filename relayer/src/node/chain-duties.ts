/**
 * What a paid relay does on-chain while it runs, with its node's signer key (the hot key the
 * registry lets submit for the operator; the operator's own key stays offline):
 *
 * - lands its payers' signed lock requests (PAY_LOCK) with `openLocks`, in small batches, after
 *   checking each signature and key itself so that a hostile payer cannot make it burn gas on
 *   requests the contract would refuse;
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
import { type Address, parseEventLogs } from "viem";
import type { AccountingStore } from "../accounting/store.ts";
import { type Eip712Domain, verifyLockRequest } from "../accounting/receipts.ts";
import { bandwidthCreditAbi, epochRewardsAbi } from "../chain/abi.ts";
import type { ChannelReader } from "../chain/reader.ts";
import {
  claimRewards,
  type OnSettlementStep,
  revertName,
  type SettlementClients,
  settleOnce,
} from "../chain/settlement.ts";
import { submitUptimeDue } from "../chain/uptime.ts";
import type { Logger } from "../log.ts";
import type { PayLock } from "../wire/payment.ts";
import type { NodeMetrics } from "../metrics/index.ts";

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
  logger: Logger;
  onStep?: OnSettlementStep;
  /** Prometheus metrics: batches and submitted receipts, chain errors. */
  metrics?: NodeMetrics;
}

export interface ChainDuties {
  /** A payer's node asked for a lock (PAY_LOCK); checked and landed in the next batch. */
  requestLock(lock: PayLock): void;
  /** One settlement round now (also what the timer runs); resolves when it is done. */
  settle(): Promise<void>;
  /** Lands the waiting lock requests now. */
  flushLocks(): Promise<void>;
  close(): Promise<void>;
}

const LOCK_BATCH = 32;

export function startChainDuties(o: ChainDutiesOptions): ChainDuties {
  const log = o.logger;
  const maxPending = o.maxPendingLocks ?? 256;
  /** The newest checked request of each key, waiting to land (one slot per key). */
  const pending = new Map<string, PayLock>();
  const seen = new Set<string>(); // (key, nonce) of checked requests already queued or landed
  let flushing: Promise<void> | undefined;
  let settling: Promise<void> | undefined;
  let closed = false;

  const land = async (batch: PayLock[]) => {
    const checked: PayLock[] = [];
    for (const lock of batch) {
      try {
        const channel = await o.reader.channel(lock.key);
        if (/^0x0{40}$/i.test(channel.account)) {
          log.warn("lock request refused: unknown client key", { key: lock.key });
          continue;
        }
      } catch (error) {
        log.warn("lock request kept for later: chain unavailable", { key: lock.key, error: (error as Error).message });
        if (!pending.has(lock.key.toLowerCase())) pending.set(lock.key.toLowerCase(), lock);
        continue;
      }
      checked.push(lock);
    }
    if (checked.length === 0) return;
    const requests = checked.map((l) => ({
      key: l.key,
      relayer: o.relayer,
      bytes_: l.bytes,
      expiresEpoch: l.expiresEpoch,
      nonce: l.nonce,
      r: l.r,
      vs: l.vs,
    }));
    try {
      const hash = await o.clients.wallet.writeContract({
        chain: o.clients.wallet.chain ?? null,
        address: o.clients.credit,
        abi: bandwidthCreditAbi,
        functionName: "openLocks",
        args: [requests],
      });
      const receipt = await o.clients.public.waitForTransactionReceipt({ hash, timeout: 120_000 });
      const rejected = parseEventLogs({ abi: bandwidthCreditAbi, logs: receipt.logs, eventName: "LockRejected" });
      for (const l of checked) o.reader.invalidate(l.key);
      log.info("locks landed", { tx: hash, opened: checked.length - rejected.length, rejected: rejected.length });
      for (const r of rejected) log.warn("lock request rejected on-chain", { key: r.args.key, nonce: r.args.nonce });
    } catch (error) {
      // Not sent or not mined: the payer's node asks again when its lock runs low.
      log.warn("locks not landed", { requests: checked.length, error: revertName(error) });
    }
  };

  const flushLocks = async () => {
    while (flushing) await flushing;
    if (pending.size === 0) return;
    const batch: PayLock[] = [];
    for (const [id, lock] of pending) {
      if (batch.length >= LOCK_BATCH) break;
      batch.push(lock);
      pending.delete(id);
    }
    flushing = land(batch)
      .catch((error: Error) => log.warn("lock landing failed", { error: error.message }))
      .finally(() => (flushing = undefined));
    await flushing;
  };

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
      const [closedNow] = await o.clients.public.readContract({
        address: o.clients.rewards,
        abi: epochRewardsAbi,
        functionName: "receiptsClosed",
        args: [e],
      });
      if (!closedNow) continue;
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
    () => void flushLocks().catch((error: Error) => log.warn("lock landing failed", { error: error.message })),
    500,
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
    requestLock(lock) {
      if (closed) return;
      const id = `${lock.key.toLowerCase()}:${lock.nonce}`;
      if (seen.has(id)) return;
      // The signature is checked before anything is queued or remembered: a forged request can
      // neither take a queue slot nor poison the (key, nonce) of a real one.
      verifyLockRequest(o.creditDomain, o.relayer, lock)
        .catch(() => false) // a malformed signature (r = 0, a point off the curve) throws
        .then((valid) => {
          if (!valid) return log.warn("lock request refused: bad signature", { key: lock.key });
          const key = lock.key.toLowerCase();
          if (!pending.has(key) && pending.size >= maxPending)
            return log.warn("lock request dropped: queue full", { key: lock.key });
          if (seen.size > 100_000) seen.clear(); // a replay after this is refused on-chain (NonceUsed)
          seen.add(id);
          pending.set(key, lock); // the newest request of a key replaces one still waiting
        });
    },
    settle,
    flushLocks,
    async close() {
      closed = true;
      clearInterval(settleTimer);
      clearInterval(lockTimer);
      clearInterval(syncTimer);
      await flushing;
      await settling;
    },
  };
}

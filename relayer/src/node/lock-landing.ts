/**
 * How a paid relay lands its payers' signed lock requests (PAY_LOCK) with `openLocks`, paying the
 * gas, without letting a payer make it pay for nothing:
 *
 * - a request below `minLockBytes` is dropped on arrival (a lock must be worth its gas);
 * - its signature is checked before it takes a queue slot (one slot per key, the newest wins);
 * - each key lands at most `burst` requests at once and one per `refillMs` after that: a request
 *   over the rate waits in its slot (honest renewals are late, never lost);
 * - the key must belong to an account (a cached chain read);
 * - the batch is simulated (`eth_call`) before it is sent, and every request the contract would
 *   refuse (credit short, nonce used, cap, expiry, revoked key, …) is dropped with its reason:
 *   a refused request changes nothing on-chain, so dropping it changes nothing for the others, and
 *   the relay sends only requests that lock. A batch with none left sends nothing.
 *
 * The gate never counts a requested lock, only what the chain says is locked: a payer whose
 * request was dropped runs on the relay's allowance and is stopped with `lock-short` when it is
 * used up. See docs/settlement.md, "Locks, in-band".
 */
import { type Account, type Address, type Chain, parseEventLogs, type PublicClient } from "viem";
import type { Transport, WalletClient } from "viem";
import { type Eip712Domain, type SignedLockRequest, verifyLockRequest } from "../accounting/receipts.ts";
import { bandwidthCreditAbi, epochRewardsAbi } from "../chain/abi.ts";
import type { ChannelReader } from "../chain/reader.ts";
import { type BumpPolicy, sendWithBumps } from "../chain/send.ts";
import { revertName } from "../chain/settlement.ts";
import type { Logger } from "../log.ts";
import type { NodeMetrics } from "../metrics/index.ts";
import type { PayLock } from "../wire/payment.ts";

export interface LockLandingOptions {
  clients: {
    public: PublicClient;
    wallet: WalletClient<Transport, Chain | undefined, Account>;
    credit: Address;
    rewards: Address;
    /** Fee bumping of the openLocks transactions (chain/send.ts). */
    bumps?: BumpPolicy;
    logger?: Logger;
  };
  /** The operator address the locks are for. */
  relayer: Address;
  reader: Pick<ChannelReader, "channel" | "invalidate">;
  creditDomain: Eip712Domain;
  /** Smallest lock landed, bytes (default 1 MiB). */
  minLockBytes?: bigint;
  /** Requests a key may land at once, and how often it gets one more (default 4, 5 s). */
  burst?: number;
  refillMs?: number;
  /** Keys with a request waiting, at most (default 256): more are dropped with a log line. */
  maxPending?: number;
  /** Requests per openLocks transaction, at most (default 32). */
  batch?: number;
  logger: Logger;
  metrics?: NodeMetrics;
  now?: () => number;
}

export interface LockLanding {
  /** Checks a request and queues it; resolves once it is queued or refused (never rejects). */
  requestLock(lock: PayLock): Promise<void>;
  /** Lands a batch of waiting requests now; resolves when it is mined, dropped or failed. */
  flushLocks(): Promise<void>;
  /** Stops taking requests and waits for a batch under way. */
  close(): Promise<void>;
}

/** Why the contract would refuse a request, from the state it reads (best effort: for the logs). */
export type LockRefusal =
  "key-revoked" | "nonce-used" | "cap-exceeded" | "expiry" | "credit-short" | "refused" | "unknown-key";

type LockRequestArgs = SignedLockRequest;

const NOT_REVOKED = (1n << 64n) - 1n;
const MAX_KEY_LOCK_EPOCHS = 24n;

export function startLockLanding(o: LockLandingOptions): LockLanding {
  const log = o.logger;
  const now = o.now ?? Date.now;
  const minBytes = o.minLockBytes ?? 1n << 20n;
  const burst = o.burst ?? 4;
  const refillMs = o.refillMs ?? 5_000;
  const maxPending = o.maxPending ?? 256;
  const batchSize = o.batch ?? 32;
  /** The newest checked request of each key, waiting to land (one slot per key). */
  const pending = new Map<string, PayLock>();
  const seen = new Set<string>(); // (key, nonce) of checked requests already queued or landed
  /** Each key's landing budget (a token bucket); full buckets are forgotten. */
  const buckets = new Map<string, { tokens: number; at: number }>();
  const deferred = new WeakSet<PayLock>();
  let flushing: Promise<void> | undefined;
  let closed = false;

  const take = (key: string): boolean => {
    const t = now();
    const b = buckets.get(key) ?? { tokens: burst, at: t };
    b.tokens = Math.min(burst, b.tokens + (t - b.at) / refillMs);
    b.at = t;
    buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  };
  const sweepBuckets = () => {
    if (buckets.size <= 4 * maxPending) return;
    const t = now();
    for (const [key, b] of buckets) if (b.tokens + (t - b.at) / refillMs >= burst) buckets.delete(key);
  };

  const args = (l: PayLock): LockRequestArgs => ({
    key: l.key,
    relayer: o.relayer,
    bytes_: l.bytes,
    expiresEpoch: l.expiresEpoch,
    nonce: l.nonce,
    r: l.r,
    vs: l.vs,
  });

  /** How many of `requests` the contract would open, in order, if sent now. */
  const simulate = async (requests: LockRequestArgs[]): Promise<number> => {
    if (requests.length === 0) return 0;
    const { result } = await o.clients.public.simulateContract({
      address: o.clients.credit,
      abi: bandwidthCreditAbi,
      functionName: "openLocks",
      args: [requests],
      account: o.clients.wallet.account,
    });
    return Number(result);
  };

  /**
   * The requests of `batch` that the contract would refuse. A refused request changes no state,
   * so request i is refused iff the prefix up to i opens no more than the prefix before it; the
   * refused ones are found by bisecting prefixes: one call when all would open.
   */
  const refusedIn = async (batch: LockRequestArgs[]): Promise<Set<number>> => {
    const refused = new Set<number>();
    const opened = new Map<number, number>([[0, 0]]);
    const prefix = async (n: number) => {
      let count = opened.get(n);
      if (count === undefined) opened.set(n, (count = await simulate(batch.slice(0, n))));
      return count;
    };
    const search = async (lo: number, hi: number): Promise<void> => {
      const [a, b] = [await prefix(lo), await prefix(hi)];
      if (b - a === hi - lo) return; // all open
      if (b === a) {
        for (let i = lo; i < hi; i++) refused.add(i); // none opens
        return;
      }
      const mid = (lo + hi) >> 1;
      await search(lo, mid);
      await search(mid, hi);
    };
    await search(0, batch.length);
    return refused;
  };

  /** Why the contract would refuse `lock` on its own, read from the chain (for the log line). */
  const refusalOf = async (lock: PayLock): Promise<LockRefusal> => {
    const c = o.clients.public;
    const credit = o.clients.credit;
    const [[account, revokedAfter, cap, spent, spendEpoch], used, epoch] = await Promise.all([
      c.readContract({ address: credit, abi: bandwidthCreditAbi, functionName: "clientKeys", args: [lock.key] }),
      c.readContract({
        address: credit,
        abi: bandwidthCreditAbi,
        functionName: "nonceUsed",
        args: [lock.key, lock.nonce],
      }),
      c.readContract({ address: o.clients.rewards, abi: epochRewardsAbi, functionName: "currentEpoch" }),
    ]);
    if (/^0x0{40}$/i.test(account)) return "unknown-key";
    if (revokedAfter !== NOT_REVOKED) return "key-revoked";
    if (used) return "nonce-used";
    if ((spendEpoch === epoch ? spent : 0n) + lock.bytes > cap) return "cap-exceeded";
    if (lock.expiresEpoch < epoch || lock.expiresEpoch > epoch + MAX_KEY_LOCK_EPOCHS) return "expiry";
    const [free] = await c.readContract({
      address: credit,
      abi: bandwidthCreditAbi,
      functionName: "creditOf",
      args: [account],
    });
    if (lock.bytes > free) return "credit-short";
    return "refused"; // with the batch's other requests (the same account's credit), or a bad signature
  };

  const requeue = (lock: PayLock) => {
    const key = lock.key.toLowerCase();
    if (!pending.has(key) && pending.size < maxPending) pending.set(key, lock);
  };

  const land = async (batch: PayLock[]) => {
    const known: PayLock[] = [];
    for (const lock of batch) {
      try {
        const channel = await o.reader.channel(lock.key);
        if (/^0x0{40}$/i.test(channel.account)) {
          o.metrics?.lockRequest("unknown_key");
          log.warn("lock request refused: unknown client key", { key: lock.key });
          continue;
        }
      } catch (error) {
        log.warn("lock request kept for later: chain unavailable", { key: lock.key, error: (error as Error).message });
        requeue(lock);
        continue;
      }
      known.push(lock);
    }
    if (known.length === 0) return;
    let refused: Set<number>;
    try {
      refused = await refusedIn(known.map(args));
    } catch (error) {
      log.warn("lock requests kept for later: cannot simulate the batch", {
        requests: known.length,
        error: revertName(error),
      });
      for (const lock of known) requeue(lock);
      return;
    }
    const good: PayLock[] = [];
    for (const [i, lock] of known.entries()) {
      if (!refused.has(i)) {
        good.push(lock);
        continue;
      }
      o.metrics?.lockRequest("refused");
      const reason = await refusalOf(lock).catch(() => "refused" as const);
      log.warn("lock request dropped: the contract would refuse it", {
        key: lock.key,
        nonce: lock.nonce,
        bytes: lock.bytes,
        reason,
      });
    }
    if (good.length === 0) return;
    try {
      // Replaced with higher fees while it waits: a stuck lock landing would hold the nonce that
      // the relay's settlement transactions queue behind (chain/send.ts).
      const receipt = await sendWithBumps(
        o.clients,
        { address: o.clients.credit, abi: bandwidthCreditAbi, functionName: "openLocks", args: [good.map(args)] },
        () => {},
        o.clients.bumps,
        o.clients.logger,
      );
      const hash = receipt.transactionHash;
      const rejected = parseEventLogs({ abi: bandwidthCreditAbi, logs: receipt.logs, eventName: "LockRejected" });
      for (const l of good) o.reader.invalidate(l.key);
      for (let i = 0; i < good.length - rejected.length; i++) o.metrics?.lockRequest("landed");
      log.info("locks landed", { tx: hash, opened: good.length - rejected.length, rejected: rejected.length });
      // Only a race with another transaction (the account's own lock, another relay) gets here.
      for (const r of rejected) {
        o.metrics?.lockRequest("rejected");
        log.warn("lock request rejected on-chain", { key: r.args.key, nonce: r.args.nonce });
      }
    } catch (error) {
      // Not sent or not mined: the payer's node asks again when its lock runs low.
      for (let i = 0; i < good.length; i++) o.metrics?.lockRequest("failed");
      log.warn("locks not landed", { requests: good.length, error: revertName(error) });
    }
  };

  const flushLocks = async () => {
    while (flushing) await flushing;
    if (pending.size === 0) return;
    const batch: PayLock[] = [];
    for (const [id, lock] of pending) {
      if (batch.length >= batchSize) break;
      if (!take(id)) {
        // Over the key's rate: it waits in its slot (a newer request of the key replaces it).
        if (!deferred.has(lock)) {
          deferred.add(lock);
          o.metrics?.lockRequest("rate_limited");
          log.info("lock request waits: the key's landing rate", { key: lock.key });
        }
        continue;
      }
      batch.push(lock);
      pending.delete(id);
    }
    sweepBuckets();
    if (batch.length === 0) return;
    flushing = land(batch)
      .catch((error: Error) => log.warn("lock landing failed", { error: error.message }))
      .finally(() => (flushing = undefined));
    await flushing;
  };

  return {
    async requestLock(lock) {
      if (closed) return;
      if (lock.bytes < minBytes) {
        o.metrics?.lockRequest("too_small");
        return log.warn("lock request dropped: below the relay's minimum", {
          key: lock.key,
          bytes: lock.bytes,
          minimum: minBytes,
        });
      }
      const id = `${lock.key.toLowerCase()}:${lock.nonce}`;
      if (seen.has(id)) return;
      // The signature is checked before anything is queued or remembered: a forged request can
      // neither take a queue slot nor poison the (key, nonce) of a real one.
      const valid = await verifyLockRequest(o.creditDomain, o.relayer, lock).catch(() => false); // r = 0, off the curve
      if (!valid) {
        o.metrics?.lockRequest("bad_signature");
        return log.warn("lock request refused: bad signature", { key: lock.key });
      }
      const key = lock.key.toLowerCase();
      if (!pending.has(key) && pending.size >= maxPending) {
        o.metrics?.lockRequest("queue_full");
        return log.warn("lock request dropped: queue full", { key: lock.key });
      }
      if (seen.size > 100_000) seen.clear(); // a replay after this is refused by the simulation (nonce used)
      seen.add(id);
      pending.set(key, lock); // the newest request of a key replaces one still waiting
    },
    flushLocks,
    async close() {
      closed = true;
      await flushing;
    },
  };
}

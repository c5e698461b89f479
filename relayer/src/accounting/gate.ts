/**
 * A relay's payment gate: which payer each circuit belongs to, how much the relay has carried for
 * each payer key and account, and whether to keep serving it. The circuit layer calls `cell` for
 * every relay cell it carries (synchronous and cheap: a few additions and comparisons) and hands
 * over the payer's PAY_HELLO and PAY_RECEIPT messages; the gate answers "serve" or a stop reason,
 * judges receipts against its own count and the chain (`judgeReceipt`, `ChannelReader`) and keeps
 * the good ones in the store for settlement. See docs/settlement.md.
 *
 * Every key of an account is paid from the account's one lock for this relay, so the gate judges
 * the account, not the key: what the relay carried for all of the account's keys beyond what was
 * paid must stay within the lock plus one allowance, and beyond what their receipts cover within
 * one receipt interval (the slack), however many keys the account has (`ledger.ts`).
 */
import type { Address } from "viem";
import type { AccountingStore } from "./store.ts";
import { judgeReceipt, owedForCell } from "./meter.ts";
import type { ChannelCount, ChannelOnChain, ReceiptVerdict } from "./meter.ts";
import { type AccountEntry, type KeyEntry, PayerLedger } from "./ledger.ts";
import type { SignedReceipt } from "./receipts.ts";
import { MAX_CELL_BODY_BYTES } from "../wire/cell.ts";
import { PayStopReason } from "../wire/payment.ts";

/**
 * Every hop charges each relay cell it carries as a third of a full cell, whatever its fill: both
 * ends can count that exactly (a hop sees only sealed bodies, whose sizes differ hop by hop), and
 * a GB of full cells through the default 3 hops costs the payer 1 GB. Cells are the "packets" the
 * rewards count; the data plane packs small writes into full cells.
 */
export const PRICED_HOPS = 3;
export const CELL_PRICE_BYTES = owedForCell(MAX_CELL_BODY_BYTES, PRICED_HOPS);

export type GateVerdict = { serve: true } | { serve: false; reason: PayStopReason };
const SERVE: GateVerdict = { serve: true };
const STOPS = new Map<PayStopReason, GateVerdict>(
  Object.values(PayStopReason).map((reason) => [reason, { serve: false, reason }]),
);
const stop = (reason: PayStopReason) => STOPS.get(reason)!;
/** The PAY_STOP reason a refused receipt earns. */
const STOP_REASON_OF: Record<Extract<ReceiptVerdict, { ok: false }>["reason"], PayStopReason> = {
  "unknown-key": PayStopReason.unknownKey,
  "lock-short": PayStopReason.lockShort,
  "lock-expired": PayStopReason.lockExpired,
  "overclaims-cells": PayStopReason.badReceipt,
  "underreports-cells": PayStopReason.badReceipt,
  underpays: PayStopReason.badReceipt,
};

export interface GateChain {
  /** The key's channel; `readAt` (ms) orders reads that finish out of order (a cache may answer old ones). */
  channel(key: Address): Promise<ChannelOnChain & { stale: boolean; readAt?: number }>;
  /** The current epoch; `fresh` skips any cache (a receipt dated ahead of the cached value). */
  currentEpoch(options?: { fresh?: boolean }): Promise<bigint>;
  /** Forgets a cached read of `key`, so that the next `channel` asks the chain. */
  invalidate?(key: Address): void;
}

export interface GateOptions {
  chain: GateChain;
  /** Keeps accepted receipts; `latestCounts` lets a restarted relay resume a key's count. */
  store: Pick<AccountingStore, "saveReceipt"> & Partial<Pick<AccountingStore, "latestCounts">>;
  /** Checks a receipt's signature for `epoch` (EIP-712, EpochRewards' domain, this relay). */
  verify: (epoch: bigint, receipt: SignedReceipt) => Promise<boolean>;
  /** Credit the relay extends to a payer account beyond its landed lock, in bytes owed. */
  allowanceBytes: bigint;
  /**
   * Relay cells a circuit may carry before its PAY_HELLO (default 32: the build's EXTENDs and the
   * hello itself). A circuit that never says who pays is stopped there, so that building circuit
   * after circuit gets nothing for free.
   */
  preHelloCells?: bigint;
  /** How far an account's receipts may lag the relay's count (one receipt interval). */
  slackCells: bigint;
  slackBytes: bigint;
  /**
   * Bytes owed that circuits may carry, all together, beyond `preHelloCells` while the chain is
   * read for a key met for the first time (its account is not known yet): default `slackBytes`.
   * Given back when the key turns out to belong to an account (its cells are then charged to it);
   * what keys nobody authorised used comes back over `pendingRefillMs` (default 10 s).
   */
  pendingBytes?: bigint;
  pendingRefillMs?: number;
  /** Client keys remembered, at most (default 100,000; keys with open circuits come on top). */
  maxKeys?: number;
  /** Clock of the pending budget (ms). */
  now?: () => number;
}

interface CircuitState {
  /** Opening order (1, 2, …): tells the circuits open when a receipt came from later ones. */
  readonly serial: number;
  key: KeyEntry | null;
  /** Cells carried while no account is known for the circuit (before the hello, or during its read). */
  unpaidCells: bigint;
  unpaidBytes: bigint;
  /** The part of them taken from the pending budget. */
  pendingBytes: bigint;
  /** A PAY_HELLO arrived and its signature is being checked (see `helloPending`). */
  helloPending: boolean;
}

/**
 * How long cells a receipt claimed ahead of the relay's count may still arrive late (held in a
 * slow relay's queue, or behind a hello's check) and be recognised as already counted.
 */
export const ADOPTED_CELLS_MS = 60_000;

/** Cells a circuit may carry beyond the pre-hello budget while its hello's signature is checked. */
export const PENDING_HELLO_CELLS = 256n;

/** Stops that a new hello, a chain read or a good receipt may lift. */
const recoverable = (reason: PayStopReason | null) =>
  reason === PayStopReason.lockShort ||
  reason === PayStopReason.noPayment ||
  reason === PayStopReason.lockExpired ||
  reason === PayStopReason.chainUnavailable ||
  reason === PayStopReason.unknownKey;

export class PaymentGate {
  readonly #o: GateOptions;
  readonly #preHello: bigint;
  readonly #ledger: PayerLedger;
  readonly #circuits = new Map<number, CircuitState>();
  readonly #now: () => number;
  #serial = 0;
  readonly #pendingMax: bigint;
  readonly #pendingRefillMs: number;
  #pending: { tokens: bigint; at: number };
  /** The latest epoch the chain told. */
  #epoch = 0n;

  constructor(options: GateOptions) {
    this.#o = options;
    this.#preHello = options.preHelloCells ?? 32n;
    this.#ledger = new PayerLedger({ maxKeys: options.maxKeys ?? 100_000, allowanceBytes: options.allowanceBytes });
    this.#now = options.now ?? Date.now;
    this.#pendingMax = options.pendingBytes ?? options.slackBytes;
    this.#pendingRefillMs = options.pendingRefillMs ?? 10_000;
    this.#pending = { tokens: this.#pendingMax, at: this.#now() };
  }

  /** A circuit through this relay was created. */
  open(circuitId: number): void {
    this.#circuits.set(circuitId, {
      serial: ++this.#serial,
      key: null,
      unpaidCells: 0n,
      unpaidBytes: 0n,
      pendingBytes: 0n,
      helloPending: false,
    });
  }

  /**
   * A PAY_HELLO arrived on `circuitId` and its signature is being checked (a few ms): up to
   * PENDING_HELLO_CELLS more than the pre-hello budget may pass meanwhile, so that a download that
   * started with the circuit is not cut by the check; the check's time bounds what a forged hello
   * gets. `hello` or `helloRefused` ends it.
   */
  helloPending(circuitId: number): void {
    const circuit = this.#circuits.get(circuitId);
    if (circuit && circuit.key === null) circuit.helloPending = true;
  }

  /** The PAY_HELLO of `circuitId` did not check out: back to the pre-hello budget (the caller stops it). */
  helloRefused(circuitId: number): void {
    const circuit = this.#circuits.get(circuitId);
    if (circuit) circuit.helloPending = false;
  }

  /** A circuit ended: forget it (the key's counts stay, they are cumulative). */
  close(circuitId: number): void {
    const circuit = this.#circuits.get(circuitId);
    if (!circuit) return;
    this.#circuits.delete(circuitId);
    if (circuit.key) {
      circuit.key.circuits--;
      this.#ledger.touch(circuit.key);
    }
  }

  /** The payer names the key that pays for `circuitId` (PAY_HELLO). */
  async hello(circuitId: number, address: Address): Promise<GateVerdict> {
    const circuit = this.#circuits.get(circuitId);
    if (!circuit) return SERVE;
    circuit.helloPending = false;
    const id = address.toLowerCase();
    let key = this.#ledger.get(id);
    if (circuit.key !== key) {
      if (circuit.key) circuit.key.circuits--;
      if (!key) key = this.#ledger.add(address, this.#o.store.latestCounts?.(address));
      else this.#ledger.touch(key);
      key.circuits++;
      circuit.key = key;
    }
    // Another hello asks the chain again: a top-up, an authorisation may have landed since.
    if (key.account === null && key.stopped !== null && recoverable(key.stopped)) key.stopped = null;
    this.#fold(circuit);
    await this.#read(key);
    this.#fold(circuit);
    return this.#verdict(key);
  }

  /**
   * The relay carried a relay cell on `circuitId` (either direction). Synchronous: it counts, and
   * answers from what the chain and the receipts said last.
   */
  cell(circuitId: number): GateVerdict {
    const circuit = this.#circuits.get(circuitId);
    if (!circuit) return SERVE;
    const key = circuit.key;
    const account = key?.account;
    if (!account) return this.#unattributed(circuit, key);
    if (key.adopted === 0n || this.#late(key, circuit, 1n) === 0n) this.#ledger.count(key, account, CELL_PRICE_BYTES);
    if (key.stopped !== null) return stop(key.stopped);
    if (account.unpaid > account.covered) return stop(PayStopReason.lockShort);
    // Receipts must keep up: a payer that stops signing is carried one receipt interval, no more
    // (the lock alone pays nothing: only receipts are settled, and an unused lock goes back).
    if (account.unreceipted > this.#o.slackBytes) return stop(PayStopReason.noPayment);
    return SERVE;
  }

  /** The payer's newest receipt for this relay (PAY_RECEIPT): judge it, keep it, answer. */
  async receipt(circuitId: number, epoch: bigint, receipt: SignedReceipt): Promise<GateVerdict> {
    const circuit = this.#circuits.get(circuitId);
    const key = circuit?.key;
    if (!circuit || !key || key.id !== receipt.key.toLowerCase()) return stop(PayStopReason.badReceipt);
    // An unknown key gets no more work (signature checks, chain reads) until a new hello re-reads it.
    if (key.stopped === PayStopReason.unknownKey) return stop(PayStopReason.unknownKey);
    let valid: boolean;
    try {
      valid = await this.#o.verify(epoch, receipt);
    } catch {
      valid = false; // a malformed signature (r = 0, a point off the curve) is a bad receipt
    }
    if (!valid) return this.#stop(key, PayStopReason.badReceipt);
    let current = await this.#o.chain.currentEpoch();
    // The payer's clock may have seen the new epoch before this relay's cached read did.
    if (epoch === current + 1n) current = await this.#o.chain.currentEpoch({ fresh: true });
    // Only receipts dated this epoch (or the one that just ended) are accepted: back- or
    // future-dated receipts would move the relay's earnings between epochs.
    if (epoch !== current && epoch + 1n !== current) return this.#stop(key, PayStopReason.badReceipt);
    let chain: ChannelOnChain & { readAt?: number };
    try {
      chain = await this.#o.chain.channel(receipt.key);
    } catch {
      return this.#stop(key, PayStopReason.chainUnavailable);
    }
    await this.#apply(key, chain, current);
    this.#fold(circuit);
    // A receipt may be ahead of this relay's count: the payer counts a forward cell when it sends
    // it, so cells in flight when a circuit died (a hop gone, a stop) were counted there and never
    // here, and a count resumed from the store lacks the last cells before the relay's restart.
    // Up to the slack the relay takes the payer's signed word and charges it for them (a receipt
    // only ever costs its signer); beyond, the receipt over-claims. Cells that were only late (on
    // a slower path, or behind a hello's check) are then not counted again when they come (#late).
    const ahead = receipt.cells - key.cells;
    const adopt = ahead > 0n && ahead <= this.#o.slackCells;
    const counted = adopt
      ? { cells: receipt.cells, bytes: key.bytes + ahead * CELL_PRICE_BYTES }
      : { cells: key.cells, bytes: key.bytes };
    const verdict = judgeReceipt({
      receipt: { cells: receipt.cells, bytes: receipt.bytes_ },
      counted,
      chain,
      epoch: current,
      slackCells: this.#o.slackCells,
      slackBytes: this.#o.slackBytes,
      allowanceBytes: this.#o.allowanceBytes,
    });
    if (!verdict.ok) return this.#stop(key, STOP_REASON_OF[verdict.reason]);
    if (adopt) {
      this.#ledger.setCounts(key, counted.cells, counted.bytes);
      const now = this.#now();
      const left = now <= key.adoptedUntil ? key.adopted : 0n;
      key.adopted = left + ahead > this.#o.slackCells ? this.#o.slackCells : left + ahead;
      key.adoptedBefore = this.#serial + 1;
      key.adoptedOn = circuit.serial;
      key.adoptedUntil = now + ADOPTED_CELLS_MS;
    }
    this.#o.store.saveReceipt(epoch, receipt);
    if (receipt.bytes_ > key.receipted) this.#ledger.setReceipted(key, receipt.bytes_);
    key.stopped = null;
    this.#ledger.touch(key);
    return this.#verdict(key);
  }

  /** What the relay has counted for `key` so far (cumulative). */
  counted(key: Address): ChannelCount {
    const entry = this.#ledger.get(key.toLowerCase());
    return entry ? { cells: entry.cells, bytes: entry.bytes } : { cells: 0n, bytes: 0n };
  }

  /** What the gate holds in memory now (keys, accounts, open circuits), for tests and metrics. */
  get size(): { keys: number; accounts: number; circuits: number } {
    return { ...this.#ledger.size, circuits: this.#circuits.size };
  }

  /**
   * A cell on a circuit whose account is not known: anonymous (no hello yet) or the key's first
   * chain read under way. It may carry `preHelloCells`, then, once it named a key, draw on the
   * relay-wide pending budget; its cells are charged to the account once the read says whose.
   */
  #unattributed(circuit: CircuitState, key: KeyEntry | null | undefined): GateVerdict {
    if (key?.stopped != null) return stop(key.stopped);
    circuit.unpaidCells += 1n;
    circuit.unpaidBytes += CELL_PRICE_BYTES;
    if (circuit.unpaidCells <= this.#preHello) return SERVE;
    if (circuit.helloPending && circuit.unpaidCells <= this.#preHello + PENDING_HELLO_CELLS) return SERVE;
    if (key && this.#takePending(CELL_PRICE_BYTES)) {
      circuit.pendingBytes += CELL_PRICE_BYTES;
      return SERVE;
    }
    return stop(PayStopReason.noPayment);
  }

  #takePending(bytes: bigint): boolean {
    const now = this.#now();
    const p = this.#pending;
    if (now > p.at) {
      const refill = (this.#pendingMax * BigInt(Math.floor(now - p.at))) / BigInt(this.#pendingRefillMs);
      p.tokens = p.tokens + refill > this.#pendingMax ? this.#pendingMax : p.tokens + refill;
      p.at = now;
    }
    if (p.tokens < bytes) return false;
    p.tokens -= bytes;
    return true;
  }

  /** Charges what a circuit carried before its account was known to that account's key. */
  #fold(circuit: CircuitState): void {
    const key = circuit.key;
    if (!key?.account || circuit.unpaidCells === 0n) return;
    const late = key.adopted === 0n ? 0n : this.#late(key, circuit, circuit.unpaidCells);
    this.#ledger.setCounts(
      key,
      key.cells + circuit.unpaidCells - late,
      key.bytes + circuit.unpaidBytes - late * CELL_PRICE_BYTES,
    );
    // Charged to an account now: the pending budget gets it back.
    const back = this.#pending.tokens + circuit.pendingBytes;
    this.#pending.tokens = back > this.#pendingMax ? this.#pendingMax : back;
    circuit.unpaidCells = 0n;
    circuit.unpaidBytes = 0n;
    circuit.pendingBytes = 0n;
  }

  /**
   * How many of `cells` cells of `circuit` are late ones a receipt already claimed (and the relay
   * counted then): only a circuit open before that receipt came, not the receipt's own, within
   * ADOPTED_CELLS_MS. Takes them from the key's adopted cells.
   */
  #late(key: KeyEntry, circuit: CircuitState, cells: bigint): bigint {
    if (circuit.serial >= key.adoptedBefore || circuit.serial === key.adoptedOn) return 0n;
    if (this.#now() > key.adoptedUntil) {
      key.adopted = 0n;
      return 0n;
    }
    const late = cells < key.adopted ? cells : key.adopted;
    key.adopted -= late;
    return late;
  }

  /** Reads the key's channel (one read at a time per key) and applies it. */
  async #read(key: KeyEntry): Promise<void> {
    if (key.reading) return key.reading;
    key.reading = (async () => {
      try {
        const [chain, epoch] = await Promise.all([this.#o.chain.channel(key.address), this.#o.chain.currentEpoch()]);
        await this.#apply(key, chain, epoch);
      } catch {
        // A known key keeps what was read last; a key never read cannot be judged.
        if (!key.account) key.stopped = PayStopReason.chainUnavailable;
      } finally {
        key.reading = null;
      }
    })();
    return key.reading;
  }

  /** What a chain read says of a key: its account, what its receipts were paid, the account's lock. */
  #apply(key: KeyEntry, chain: ChannelOnChain & { readAt?: number }, epoch: bigint): Promise<void> | undefined {
    if (/^0x0{40}$/i.test(chain.account)) {
      if (!key.account) key.stopped = PayStopReason.unknownKey;
      return;
    }
    const account = this.#ledger.assign(key, chain.account);
    if (recoverable(key.stopped)) key.stopped = null; // a top-up, an authorisation may have landed
    // What a channel was paid only grows: a stale read (the RPC down) never lowers it.
    if (chain.bytesPaid > key.paid) this.#ledger.setPaid(key, chain.bytesPaid);
    if (chain.bytesLeft < account.lockLeft && account.keys.size > 1 && this.#o.chain.invalidate) {
      // The lock shrank: receipts were paid, maybe those of other keys, whose paid counts here are
      // older. Read them again before believing the smaller lock, or the gate would count the
      // same bytes as unpaid (their key) and gone (the lock) at once and stop an honest account.
      return this.#syncAccount(account);
    }
    this.#setLock(account, chain, epoch);
  }

  #setLock(account: AccountEntry, chain: ChannelOnChain & { readAt?: number }, epoch: bigint): void {
    if (epoch > this.#epoch) this.#epoch = epoch; // a cached epoch read may be older than the last
    const readAt = chain.readAt ?? this.#now();
    // An older read that finished after a newer one says nothing new of the lock.
    if (readAt >= account.lockReadAt) {
      account.lockLeft = chain.bytesLeft;
      account.lockExpires = chain.expiresEpoch;
      account.lockReadAt = readAt;
    }
    // Nothing new is paid from a lock past its last epoch.
    account.covered = (this.#epoch > account.lockExpires ? 0n : account.lockLeft) + this.#o.allowanceBytes;
  }

  readonly #syncing = new WeakMap<AccountEntry, Promise<void>>();

  /** Reads every key of `account` here afresh, then applies their paid counts and the newest lock together. */
  #syncAccount(account: AccountEntry): Promise<void> {
    const running = this.#syncing.get(account);
    if (running) return running;
    const keys = [...account.keys];
    for (const k of keys) this.#o.chain.invalidate!(k.address);
    const sync = Promise.all([
      Promise.allSettled(keys.map(async (k) => ({ k, chain: await this.#o.chain.channel(k.address) }))),
      this.#o.chain.currentEpoch(),
    ])
      .then(([results, epoch]) => {
        let newest: (ChannelOnChain & { readAt?: number }) | undefined;
        for (const r of results) {
          if (r.status !== "fulfilled") continue;
          const { k, chain } = r.value;
          if (k.account === account && chain.bytesPaid > k.paid) this.#ledger.setPaid(k, chain.bytesPaid);
          if (!newest || (chain.readAt ?? 0) >= (newest.readAt ?? 0)) newest = chain;
        }
        if (newest) this.#setLock(account, newest, epoch);
      })
      .catch(() => {}) // the chain is down: the larger lock stands until a later read
      .finally(() => this.#syncing.delete(account));
    this.#syncing.set(account, sync);
    return sync;
  }

  #verdict(key: KeyEntry): GateVerdict {
    if (key.stopped !== null) return stop(key.stopped);
    const account: AccountEntry | null = key.account;
    if (!account) return stop(PayStopReason.chainUnavailable); // the read failed: nothing known
    if (account.unpaid > account.covered) return stop(PayStopReason.lockShort);
    if (account.unreceipted > this.#o.slackBytes) return stop(PayStopReason.noPayment);
    return SERVE;
  }

  #stop(key: KeyEntry, reason: PayStopReason): GateVerdict {
    key.stopped = reason;
    return stop(reason);
  }
}

/**
 * A relay's payment gate: which payer each circuit belongs to, how much the relay has carried for
 * each payer key, and whether to keep serving it. The circuit layer calls `cell` for every relay
 * cell it carries (synchronous and cheap: a counter and a comparison) and hands over the payer's
 * PAY_HELLO and PAY_RECEIPT messages; the gate answers "serve" or a stop reason, judges receipts
 * against its own count and the chain (`judgeReceipt`, `ChannelReader`) and keeps the good ones in
 * the store for settlement. See docs/settlement.md.
 */
import type { Address } from "viem";
import type { AccountingStore } from "./store.ts";
import { ChannelMeter, judgeReceipt, owedForCell } from "./meter.ts";
import type { ChannelOnChain, ReceiptVerdict } from "./meter.ts";
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
  channel(key: Address): Promise<ChannelOnChain & { stale: boolean }>;
  /** The current epoch; `fresh` skips any cache (a receipt dated ahead of the cached value). */
  currentEpoch(options?: { fresh?: boolean }): Promise<bigint>;
}

export interface GateOptions {
  chain: GateChain;
  /** Keeps accepted receipts; `latestCounts` lets a restarted relay resume a key's count. */
  store: Pick<AccountingStore, "saveReceipt"> & Partial<Pick<AccountingStore, "latestCounts">>;
  /** Checks a receipt's signature for `epoch` (EIP-712, EpochRewards' domain, this relay). */
  verify: (epoch: bigint, receipt: SignedReceipt) => Promise<boolean>;
  /** Credit the relay extends to a payer beyond its landed lock, in bytes owed. */
  allowanceBytes: bigint;
  /**
   * Relay cells a circuit may carry before its PAY_HELLO (default 32: the build's EXTENDs and the
   * hello itself). A circuit that never says who pays is stopped there, so that building circuit
   * after circuit gets nothing for free.
   */
  preHelloCells?: bigint;
  /** How far a receipt may lag the relay's count (one receipt interval). */
  slackCells: bigint;
  slackBytes: bigint;
}

interface KeyState {
  /** Bytes owed the relay may carry for this key before a new receipt or chain read: paid + lock + allowance. */
  coveredUntil: bigint;
  /** Bytes owed by the last receipt accepted (the relay's count may run ahead of it by slackBytes). */
  receipted: bigint;
  stopped: PayStopReason | null;
}

const recoverable = (reason: PayStopReason | null | undefined) =>
  reason === PayStopReason.lockShort || reason === PayStopReason.noPayment || reason === PayStopReason.lockExpired;

/** Cells a circuit may carry beyond the pre-hello budget while its hello's signature is checked. */
export const PENDING_HELLO_CELLS = 256n;

export class PaymentGate {
  readonly #options: GateOptions;
  readonly #meter = new ChannelMeter<string>();
  readonly #circuits = new Map<
    number,
    { key: string | null; unpaidCells: bigint; unpaidBytes: bigint; helloPending: boolean }
  >();
  readonly #keys = new Map<string, KeyState>();
  /**
   * Keys whose count was resumed from the store after a restart: the cells carried between their
   * last kept receipt and the restart were not counted, at most one receipt interval (the gate
   * stops a payer whose receipts lag more). Their next receipt may claim up to that much more than
   * the resumed count once; the count then starts from that receipt.
   */
  readonly #resumed = new Set<string>();

  constructor(options: GateOptions) {
    this.#options = options;
  }

  /** A circuit through this relay was created. */
  open(circuitId: number): void {
    this.#circuits.set(circuitId, { key: null, unpaidCells: 0n, unpaidBytes: 0n, helloPending: false });
  }

  /** A circuit ended: forget it (the key's counts stay, they are cumulative). */
  close(circuitId: number): void {
    this.#circuits.delete(circuitId);
  }

  /**
   * A PAY_HELLO arrived on `circuitId` and its signature is being checked (a few ms): cells keep
   * counting as the circuit's own, but up to PENDING_HELLO_CELLS more may pass meanwhile, so that a
   * download that started with the circuit is not cut by the check. The check's time bounds what a
   * forged hello gets; `hello` or `helloRefused` ends it.
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

  /** The payer names the key that pays for `circuitId` (PAY_HELLO). */
  async hello(circuitId: number, key: Address): Promise<GateVerdict> {
    const circuit = this.#circuits.get(circuitId);
    if (!circuit) return SERVE;
    circuit.helloPending = false;
    const id = key.toLowerCase();
    circuit.key = id;
    this.#resume(id, key);
    // Cells carried before the hello count for the key now.
    if (circuit.unpaidCells > 0n) {
      const count = this.#meter.get(id);
      this.#meter.resume(id, { cells: count.cells + circuit.unpaidCells, bytes: count.bytes + circuit.unpaidBytes });
      circuit.unpaidCells = 0n;
      circuit.unpaidBytes = 0n;
    }
    const state = await this.#refresh(id, key);
    return this.#verdict(id, state);
  }

  /**
   * The relay carried a relay cell on `circuitId` (either direction). Synchronous: it counts, and
   * answers from what the chain and the receipts said last.
   */
  cell(circuitId: number): GateVerdict {
    const circuit = this.#circuits.get(circuitId);
    if (!circuit) return SERVE;
    if (circuit.key === null) {
      circuit.unpaidCells += 1n;
      circuit.unpaidBytes += CELL_PRICE_BYTES;
      const budget = (this.#options.preHelloCells ?? 32n) + (circuit.helloPending ? PENDING_HELLO_CELLS : 0n);
      return circuit.unpaidCells > budget ? { serve: false, reason: PayStopReason.noPayment } : SERVE;
    }
    const count = this.#meter.add(circuit.key, CELL_PRICE_BYTES);
    const state = this.#keys.get(circuit.key);
    if (!state) return SERVE; // the hello's chain read is under way; the allowance covers it
    if (state.stopped !== null) return { serve: false, reason: state.stopped };
    if (count.bytes > state.coveredUntil) {
      state.stopped = PayStopReason.lockShort;
      return { serve: false, reason: state.stopped };
    }
    // Receipts must keep up: a payer that stops signing is carried one receipt interval, no more
    // (the lock alone pays nothing: only receipts are settled, and an unused lock goes back).
    if (count.bytes > state.receipted + this.#options.slackBytes) {
      state.stopped = PayStopReason.noPayment;
      return { serve: false, reason: state.stopped };
    }
    return SERVE;
  }

  /** The payer's newest receipt for this relay (PAY_RECEIPT): judge it, keep it, answer. */
  async receipt(circuitId: number, epoch: bigint, receipt: SignedReceipt): Promise<GateVerdict> {
    const circuit = this.#circuits.get(circuitId);
    const id = receipt.key.toLowerCase();
    if (!circuit || circuit.key !== id) return { serve: false, reason: PayStopReason.badReceipt };
    // An unknown key gets no more work (signature checks, chain reads) until a new hello re-reads it.
    if (this.#keys.get(id)?.stopped === PayStopReason.unknownKey)
      return { serve: false, reason: PayStopReason.unknownKey };
    let valid: boolean;
    try {
      valid = await this.#options.verify(epoch, receipt);
    } catch {
      valid = false; // a malformed signature (r = 0, a point off the curve) is a bad receipt
    }
    if (!valid) return this.#stop(id, PayStopReason.badReceipt);
    let current = await this.#options.chain.currentEpoch();
    // The payer's clock may have seen the new epoch before this relay's cached read did.
    if (epoch === current + 1n) current = await this.#options.chain.currentEpoch({ fresh: true });
    // Only receipts dated this epoch (or the one that just ended) are accepted: back- or
    // future-dated receipts would move the relay's earnings between epochs.
    if (epoch !== current && epoch + 1n !== current) return this.#stop(id, PayStopReason.badReceipt);
    let chain: ChannelOnChain;
    try {
      chain = await this.#options.chain.channel(receipt.key);
    } catch {
      return this.#stop(id, PayStopReason.chainUnavailable);
    }
    if (this.#resumed.has(id)) {
      const counted = this.#meter.get(id);
      const gap = receipt.cells - counted.cells;
      if (gap > 0n && gap <= this.#options.slackCells) {
        this.#meter.resume(id, { cells: receipt.cells, bytes: counted.bytes + gap * CELL_PRICE_BYTES });
      }
    }
    const verdict = judgeReceipt({
      receipt: { cells: receipt.cells, bytes: receipt.bytes_ },
      counted: this.#meter.get(id),
      chain,
      epoch: current,
      slackCells: this.#options.slackCells,
      slackBytes: this.#options.slackBytes,
      allowanceBytes: this.#options.allowanceBytes,
    });
    if (!verdict.ok) {
      return this.#stop(id, STOP_REASON_OF[verdict.reason]);
    }
    this.#options.store.saveReceipt(epoch, receipt);
    this.#resumed.delete(id);
    const state = this.#keys.get(id) ?? { coveredUntil: 0n, receipted: 0n, stopped: null };
    state.coveredUntil = this.#coveredUntil(chain, current);
    if (receipt.bytes_ > state.receipted) state.receipted = receipt.bytes_;
    state.stopped = null;
    this.#keys.set(id, state);
    return SERVE;
  }

  /** What the relay has counted for `key` so far (cumulative). */
  counted(key: Address) {
    return this.#meter.get(key.toLowerCase());
  }

  /** The first time this process sees `key`: start its count where the kept receipts left it. */
  #resume(id: string, key: Address): void {
    if (this.#keys.has(id) || this.#resumed.has(id) || !this.#options.store.latestCounts) return;
    const last = this.#options.store.latestCounts(key);
    if (!last) return;
    const count = this.#meter.get(id);
    this.#meter.resume(id, { cells: count.cells + last.cells, bytes: count.bytes + last.bytes });
    this.#resumed.add(id);
  }

  /** What a channel covers: paid + what the lock holds (nothing new once it expired) + the allowance. */
  #coveredUntil(chain: ChannelOnChain, epoch: bigint): bigint {
    const left = epoch > chain.expiresEpoch ? 0n : chain.bytesLeft;
    return chain.bytesPaid + left + this.#options.allowanceBytes;
  }

  async #refresh(id: string, key: Address): Promise<KeyState> {
    let state = this.#keys.get(id);
    // Until its first receipt, a key is carried one receipt interval past what it already paid.
    let receipted = state?.receipted ?? this.#meter.get(id).bytes;
    try {
      const [chain, epoch] = await Promise.all([this.#options.chain.channel(key), this.#options.chain.currentEpoch()]);
      // Receipts accepted while the chain was read moved `receipted` on: never go back.
      const during = this.#keys.get(id)?.receipted ?? 0n;
      if (during > receipted) receipted = during;
      if (/^0x0{40}$/i.test(chain.account)) {
        state = { coveredUntil: 0n, receipted, stopped: PayStopReason.unknownKey };
      } else {
        state = {
          coveredUntil: this.#coveredUntil(chain, epoch),
          receipted,
          // A short lock or a late receipt may have been mended since (a top-up, a receipt).
          stopped: recoverable(state?.stopped) ? null : (state?.stopped ?? null),
        };
      }
    } catch {
      state = state ?? { coveredUntil: this.#options.allowanceBytes, receipted, stopped: null };
    }
    this.#keys.set(id, state);
    return state;
  }

  #verdict(id: string, state: KeyState): GateVerdict {
    if (state.stopped !== null) return { serve: false, reason: state.stopped };
    if (this.#meter.get(id).bytes > state.coveredUntil) return { serve: false, reason: PayStopReason.lockShort };
    return SERVE;
  }

  #stop(id: string, reason: PayStopReason): GateVerdict {
    const state = this.#keys.get(id) ?? { coveredUntil: 0n, receipted: 0n, stopped: null };
    state.stopped = reason;
    this.#keys.set(id, state);
    return { serve: false, reason };
  }
}

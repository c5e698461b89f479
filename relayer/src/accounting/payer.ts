/**
 * The payer's side of in-band payment: its node counts the cells each hop carried for it (the same
 * way the hop does: every cell at CELL_PRICE_BYTES), signs each hop a cumulative receipt every
 * `everyCells` cells or `everyMs` milliseconds, whichever comes first, and signs lock requests a
 * hop can land on-chain. The circuit layer sends what this returns as PAY_* messages to that hop.
 */
import type { Address, LocalAccount } from "viem";
import { ChannelMeter } from "./meter.ts";
import { CELL_PRICE_BYTES } from "./gate.ts";
import { type Eip712Domain, signLockRequest, signReceipt } from "./receipts.ts";
import type { PayLock, PayReceipt } from "../wire/payment.ts";

export interface PayerOptions {
  /** The client key (authorised for the payer's account on BandwidthCredit). */
  key: LocalAccount;
  /** EIP-712 domains of EpochRewards (receipts) and BandwidthCredit (lock requests). */
  receiptDomain: Eip712Domain;
  creditDomain: Eip712Domain;
  /** The current epoch, as the node knows it (from the chain, cached). */
  epoch: () => bigint;
  everyCells: bigint;
  everyMs: number;
  now?: () => number;
  /** First lock-request nonce (persist the last one used across restarts). */
  firstNonce?: bigint;
}

export class PayerChannels {
  readonly #o: PayerOptions;
  readonly #meter = new ChannelMeter<string>();
  readonly #lastSigned = new Map<string, { cells: bigint; at: number }>();
  readonly #now: () => number;
  #nonce: bigint;

  constructor(options: PayerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#nonce = options.firstNonce ?? BigInt(this.#now()) << 16n; // unordered nonces: time-based start
  }

  get key(): Address {
    return this.#o.key.address;
  }

  /** Starts `relayer`'s channel from counts remembered elsewhere (never goes backwards). */
  resume(relayer: Address, cells: bigint, bytes: bigint): void {
    this.#meter.resume(relayer.toLowerCase(), { cells, bytes });
  }

  /** `relayer` carried a relay cell for us (either direction); true when a receipt is due for it. */
  carried(relayer: Address): boolean {
    const id = relayer.toLowerCase();
    const count = this.#meter.add(id, CELL_PRICE_BYTES);
    const last = this.#lastSigned.get(id) ?? { cells: 0n, at: this.#now() };
    if (!this.#lastSigned.has(id)) this.#lastSigned.set(id, last);
    return count.cells - last.cells >= this.#o.everyCells || this.#now() - last.at >= this.#o.everyMs;
  }

  /** Signs `relayer` a receipt for everything counted so far. */
  async receipt(relayer: Address): Promise<PayReceipt> {
    const id = relayer.toLowerCase();
    const count = this.#meter.get(id);
    const epoch = this.#o.epoch();
    this.#lastSigned.set(id, { cells: count.cells, at: this.#now() });
    const signed = await signReceipt(this.#o.key, this.#o.receiptDomain, {
      relayer,
      epoch,
      cells: count.cells,
      bytes: count.bytes,
    });
    return { key: signed.key, epoch, cells: signed.cells, bytes: signed.bytes_, r: signed.r, vs: signed.vs };
  }

  /** Signs a request that locks `bytes` of the account's credit for `relayer` until `expiresEpoch`. */
  async lockRequest(relayer: Address, bytes: bigint, expiresEpoch: bigint): Promise<PayLock> {
    const nonce = this.#nonce++;
    const signed = await signLockRequest(this.#o.key, this.#o.creditDomain, { relayer, bytes, expiresEpoch, nonce });
    return { key: signed.key, bytes, expiresEpoch, nonce, r: signed.r, vs: signed.vs };
  }

  /** What the payer counted for `relayer`. */
  counted(relayer: Address) {
    return this.#meter.get(relayer.toLowerCase());
  }
}

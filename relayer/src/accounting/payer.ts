/**
 * The payer's side of in-band payment: its node counts the cells each hop carried for it (the same
 * way the hop does: every cell at CELL_PRICE_BYTES), signs each hop a cumulative receipt every
 * `everyCells` cells or `everyMs` milliseconds, whichever comes first, and signs lock requests a
 * hop can land on-chain. The circuit layer sends what this returns as PAY_* messages to that hop.
 */
import type { Address, LocalAccount } from "viem";
import { ChannelMeter } from "./meter.ts";
import { CELL_PRICE_BYTES } from "./gate.ts";
import type { PayHello } from "../wire/payment.ts";
import { type Eip712Domain, signLockRequest, signPayHello, signReceipt } from "./receipts.ts";
import type { PayLock, PayReceipt } from "../wire/payment.ts";
import type { PayerStore } from "./payer-store.ts";

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
  /** First lock-request nonce when no store remembers one. */
  firstNonce?: bigint;
  /**
   * Durable counts and nonces: the channels resume from it, and every receipt's counts and every
   * nonce are committed to it before they leave the node.
   */
  store?: PayerStore;
  /**
   * In-band locks: each hop is sent a signed request for `bytes` of credit, valid `epochs` epochs,
   * when the circuit is built and whenever less than half of what was requested for it is left.
   * Absent: the payer locks on-chain itself (`x0t lock`).
   */
  locks?: { bytes: bigint; epochs: bigint };
}

/** What the payer asked a relay to lock: covered up to `upTo` bytes owed, until `expiresEpoch`. */
interface Requested {
  upTo: bigint;
  expiresEpoch: bigint;
  /** The request's nonce, and what was asked before it (restored if it never leaves). */
  nonce?: bigint;
  before?: Requested;
}

export class PayerChannels {
  readonly #o: PayerOptions;
  readonly #meter = new ChannelMeter<string>();
  /** Per relay: the count the last receipt signed, when, and the payer's own cells since (`own`). */
  readonly #lastSigned = new Map<string, { cells: bigint; at: number; own: bigint }>();
  readonly #now: () => number;
  /** What this node asked each relay to lock (bytes owed up to which it is covered, and until when). */
  readonly #requested = new Map<string, Requested>();
  #nonce: bigint;

  constructor(options: PayerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    const stored = options.store?.nextNonce(options.key.address);
    // Unordered nonces (a bitmap on-chain): a time-based start keeps a node without a store clear
    // of the nonces an earlier run used.
    this.#nonce = stored ?? options.firstNonce ?? BigInt(this.#now()) << 16n;
    for (const [relayer, count] of options.store?.channels(options.key.address) ?? []) {
      this.#meter.resume(relayer, count);
      this.#lastSigned.set(relayer, { cells: count.cells, at: this.#now(), own: 0n });
    }
  }

  get key(): Address {
    return this.#o.key.address;
  }

  /** A PAY_HELLO for `relayer`'s hop of a circuit whose hop handshake has `binding`. */
  hello(relayer: Address, binding: Uint8Array): Promise<PayHello> {
    return signPayHello(this.#o.key, this.#o.receiptDomain, relayer, binding);
  }

  /** Starts `relayer`'s channel from counts remembered elsewhere (never goes backwards). */
  resume(relayer: Address, cells: bigint, bytes: bigint): void {
    this.#meter.resume(relayer.toLowerCase(), { cells, bytes });
  }

  /**
   * `relayer` carried a relay cell for us (either direction); true when a receipt is due for it.
   * `own`: one of the payer's own messages (PAY_HELLO, PAY_RECEIPT, PAY_LOCK), counted like any
   * cell but no reason for an idle receipt (`unsigned`).
   */
  carried(relayer: Address, own = false): boolean {
    const id = relayer.toLowerCase();
    const count = this.#meter.add(id, CELL_PRICE_BYTES);
    let last = this.#lastSigned.get(id);
    if (!last) this.#lastSigned.set(id, (last = { cells: 0n, at: this.#now(), own: 0n }));
    // The payer's own message never makes a receipt due by itself (a receipt for a far hop would
    // otherwise set off receipts at the hops before it once their interval has passed).
    if (own) {
      last.own += 1n;
      return false;
    }
    return count.cells - last.cells >= this.#o.everyCells || this.#now() - last.at >= this.#o.everyMs;
  }

  /** How often a receipt is due when traffic is slow (ms). */
  get intervalMs(): number {
    return this.#o.everyMs;
  }

  /**
   * True when `relayer` carried cells that no signed receipt covers yet, other than the payer's own
   * messages since the last one: each receipt is itself a cell, so counting those would make every
   * idle receipt the cause of the next, and an idle circuit would sign one per hop every interval.
   * They wait for the next receipt (a few cells, well within the relays' slack).
   */
  unsigned(relayer: Address): boolean {
    const id = relayer.toLowerCase();
    const last = this.#lastSigned.get(id);
    return this.#meter.get(id).cells > (last ? last.cells + last.own : 0n);
  }

  /**
   * A receipt for `cells` was signed but never sent (its circuit closed meanwhile): unless a later
   * one was signed since, the relay's cells are uncovered again, and the next receipt (cumulative)
   * covers them.
   */
  unsent(relayer: Address, cells: bigint): void {
    const last = this.#lastSigned.get(relayer.toLowerCase());
    if (last && last.cells === cells) {
      last.cells = 0n;
      last.own = 0n;
    }
  }

  /** Signs `relayer` a receipt for everything counted so far. */
  async receipt(relayer: Address): Promise<PayReceipt> {
    const id = relayer.toLowerCase();
    const count = this.#meter.get(id);
    const epoch = this.#o.epoch();
    this.#lastSigned.set(id, { cells: count.cells, at: this.#now(), own: 0n });
    this.#o.store?.signed(this.#o.key.address, relayer, count);
    let signed;
    try {
      signed = await signReceipt(this.#o.key, this.#o.receiptDomain, {
        relayer,
        epoch,
        cells: count.cells,
        bytes: count.bytes,
      });
    } catch (error) {
      this.unsent(relayer, count.cells); // nothing was signed: its cells are not covered
      throw error;
    }
    return { key: signed.key, epoch, cells: signed.cells, bytes: signed.bytes_, r: signed.r, vs: signed.vs };
  }

  /** Signs a request that locks `bytes` of the account's credit for `relayer` until `expiresEpoch`. */
  async lockRequest(relayer: Address, bytes: bigint, expiresEpoch: bigint): Promise<PayLock> {
    const nonce = this.#nonce++;
    this.#o.store?.useNonce(this.#o.key.address, this.#nonce);
    const signed = await signLockRequest(this.#o.key, this.#o.creditDomain, { relayer, bytes, expiresEpoch, nonce });
    return { key: signed.key, bytes, expiresEpoch, nonce, r: signed.r, vs: signed.vs };
  }

  /**
   * A lock request for `relayer` when the lock policy says one is due (none asked yet, less than
   * half of the last request left, or it expires before the next epoch), else undefined.
   */
  async lockDue(relayer: Address): Promise<PayLock | undefined> {
    const policy = this.#o.locks;
    if (!policy) return undefined;
    const id = relayer.toLowerCase();
    const owed = this.#meter.get(id).bytes;
    const epoch = this.#o.epoch();
    const last = this.#requested.get(id);
    if (last && owed + policy.bytes / 2n < last.upTo && last.expiresEpoch > epoch) return undefined;
    const expiresEpoch = epoch + policy.epochs;
    const next: Requested = { upTo: (last && last.upTo > owed ? last.upTo : owed) + policy.bytes, expiresEpoch };
    if (last) next.before = { upTo: last.upTo, expiresEpoch: last.expiresEpoch };
    this.#requested.set(id, next);
    try {
      const lock = await this.lockRequest(relayer, policy.bytes, expiresEpoch);
      next.nonce = lock.nonce;
      return lock;
    } catch (error) {
      this.#unask(id, next);
      throw error;
    }
  }

  /**
   * The lock request `nonce` for `relayer` never left (its circuit closed while it was signed):
   * unless another was asked since, the next circuit asks again at once.
   */
  lockUnsent(relayer: Address, nonce: bigint): void {
    const id = relayer.toLowerCase();
    const current = this.#requested.get(id);
    if (current?.nonce === nonce) this.#unask(id, current);
  }

  #unask(id: string, request: Requested): void {
    if (this.#requested.get(id) !== request) return;
    if (request.before) this.#requested.set(id, request.before);
    else this.#requested.delete(id);
  }

  /** What the payer counted for `relayer`. */
  counted(relayer: Address) {
    return this.#meter.get(relayer.toLowerCase());
  }
}

/**
 * Counting what a relay carried for a payer, on both sides of a channel, and judging a receipt.
 *
 * The payer's node and each relay count the same thing independently: the cells a relay carried
 * for the payer (both directions, all circuits through that relay), and the bytes the payer owes
 * for them — each cell's body as that relay saw it, divided by the circuit's hop count (so a GB
 * through 3 hops costs the payer about 1 GB in all). Counts are cumulative over the channel's
 * life, like the receipts that carry them. Pure: no I/O, no clock; the store and the data plane
 * call in.
 */
import type { Address } from "viem";

/** What a payer owes one hop for a cell whose body at that hop is `bodyBytes`, on `hops` hops. */
export function owedForCell(bodyBytes: number, hops: number): bigint {
  if (!Number.isInteger(bodyBytes) || bodyBytes < 0) throw new RangeError(`bodyBytes must be >= 0, got ${bodyBytes}`);
  if (!Number.isInteger(hops) || hops < 1 || hops > 8) throw new RangeError(`hops must be 1..8, got ${hops}`);
  return BigInt(Math.ceil(bodyBytes / hops));
}

/** Cumulative counts of one channel. */
export interface ChannelCount {
  cells: bigint;
  bytes: bigint;
}

/** Per-channel cumulative counters (one per relay on the payer's side, one per payer on a relay's). */
export class ChannelMeter<K extends string = string> {
  readonly #counts = new Map<K, ChannelCount>();

  /** Starts a channel from counts a store or the chain remembered (never goes backwards). */
  resume(channel: K, count: ChannelCount): void {
    const current = this.#counts.get(channel);
    if (!current || count.bytes > current.bytes) this.#counts.set(channel, { ...count });
  }

  /** Adds one cell that owes `owed` bytes (see `owedForCell`); returns the channel's new totals. */
  add(channel: K, owed: bigint): ChannelCount {
    const count = this.#counts.get(channel) ?? { cells: 0n, bytes: 0n };
    count.cells += 1n;
    count.bytes += owed;
    this.#counts.set(channel, count);
    return { ...count };
  }

  get(channel: K): ChannelCount {
    const count = this.#counts.get(channel);
    return count ? { ...count } : { cells: 0n, bytes: 0n };
  }
}

/** What a relay knows of a payer's channel on-chain (cached reads of BandwidthCredit). */
export interface ChannelOnChain {
  /** The account the client key belongs to (zero address: unknown key). */
  account: Address;
  /** Bytes the account's lock for this relay still holds, and what this key's receipts were paid. */
  bytesLeft: bigint;
  bytesPaid: bigint;
  expiresEpoch: bigint;
}

export type ReceiptVerdict =
  | { ok: true; unpaid: bigint }
  | {
      ok: false;
      reason: "unknown-key" | "overclaims-cells" | "underreports-cells" | "underpays" | "lock-short" | "lock-expired";
    };

/**
 * A relay's judgement of a payer's latest receipt against its own count and the chain: the
 * receipt may not claim more cells than the relay carried (the gate first takes up to `slackCells`
 * more on the payer's word: forward cells in flight when a circuit died), nor fewer than it carried minus
 * `slackCells` (cells set the relay's reward cap: a payer who under-states them starves the relay),
 * nor owe fewer bytes than the relay counted minus `slackBytes` (receipts lag the traffic by up to
 * one interval), and the lock must
 * cover what the receipt owes beyond what was paid, plus `allowanceBytes` of credit the relay
 * extends before a lock lands. The relay stops serving the payer on any `ok: false`.
 */
export function judgeReceipt(args: {
  receipt: ChannelCount;
  counted: ChannelCount;
  chain: ChannelOnChain;
  epoch: bigint;
  slackCells: bigint;
  slackBytes: bigint;
  allowanceBytes: bigint;
}): ReceiptVerdict {
  const { receipt, counted, chain, epoch, slackCells, slackBytes, allowanceBytes } = args;
  if (/^0x0{40}$/i.test(chain.account)) return { ok: false, reason: "unknown-key" };
  if (receipt.cells > counted.cells) return { ok: false, reason: "overclaims-cells" };
  if (receipt.cells + slackCells < counted.cells) return { ok: false, reason: "underreports-cells" };
  if (receipt.bytes + slackBytes < counted.bytes) return { ok: false, reason: "underpays" };
  const unpaid = counted.bytes > chain.bytesPaid ? counted.bytes - chain.bytesPaid : 0n;
  // An expired lock covers nothing new: the allowance bridges the time until the payer's renewed
  // lock lands, as it does before a first lock.
  if (epoch > chain.expiresEpoch) {
    if (unpaid > allowanceBytes) return { ok: false, reason: "lock-expired" };
  } else if (unpaid > chain.bytesLeft + allowanceBytes) return { ok: false, reason: "lock-short" };
  return { ok: true, unpaid };
}

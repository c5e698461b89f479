/**
 * What a relay reads from the chain to judge payers' receipts, cached: the account behind a client
 * key and that account's lock for this relay. A read older than `ttlMs` is refreshed; when the RPC
 * is down, the last value is served marked `stale` (a relay keeps serving payers it already knew
 * to be covered, within its allowance) and a key never seen before is an error.
 */
import { type Address, type PublicClient, zeroAddress } from "viem";
import type { ChannelOnChain } from "../accounting/meter.ts";
import { bandwidthCreditAbi, epochRewardsAbi } from "./abi.ts";
import { ChainError } from "./errors.ts";

export interface CachedChannel extends ChannelOnChain {
  /** True when the RPC failed and this is the last value read. */
  stale: boolean;
  /** When it was read (ms, from the reader's clock). */
  readAt: number;
}

export class ChainReadError extends ChainError {}

export class ChannelReader {
  readonly #client: PublicClient;
  readonly #credit: Address;
  readonly #rewards: Address;
  readonly #relayer: Address;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, CachedChannel>();
  /** Bound on cached keys: the least recently read are dropped first. */
  readonly #maxEntries: number;
  #epoch: { value: bigint; readAt: number } | undefined;

  constructor(
    client: PublicClient,
    contracts: { credit: Address; rewards: Address; relayer: Address },
    options: { ttlMs?: number; now?: () => number; maxEntries?: number } = {},
  ) {
    this.#client = client;
    this.#credit = contracts.credit;
    this.#rewards = contracts.rewards;
    this.#relayer = contracts.relayer;
    this.#ttlMs = options.ttlMs ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#maxEntries = options.maxEntries ?? 100_000;
  }

  /** The payer channel of client `key` with this relay. */
  async channel(key: Address): Promise<CachedChannel> {
    const id = key.toLowerCase();
    const cached = this.#cache.get(id);
    const now = this.#now();
    if (cached && now - cached.readAt < this.#ttlMs) return cached;
    try {
      const [account] = await this.#client.readContract({
        address: this.#credit,
        abi: bandwidthCreditAbi,
        functionName: "clientKeys",
        args: [key],
      });
      let lock = { bytesLeft: 0n, escrow: 0n, expiresEpoch: 0n };
      let paid = { cellsPaid: 0n, bytesPaid: 0n };
      if (account !== zeroAddress) {
        [lock, paid] = await Promise.all([
          this.#client.readContract({
            address: this.#credit,
            abi: bandwidthCreditAbi,
            functionName: "lockOf",
            args: [account, this.#relayer],
          }),
          this.#client.readContract({
            address: this.#credit,
            abi: bandwidthCreditAbi,
            functionName: "channelOf",
            args: [key, this.#relayer],
          }),
        ]);
      }
      const fresh: CachedChannel = {
        account,
        bytesLeft: lock.bytesLeft,
        bytesPaid: paid.bytesPaid,
        expiresEpoch: lock.expiresEpoch,
        stale: false,
        readAt: now,
      };
      this.#cache.delete(id);
      this.#cache.set(id, fresh);
      if (this.#cache.size > this.#maxEntries) this.#cache.delete(this.#cache.keys().next().value as string);
      return fresh;
    } catch (cause) {
      if (cached) return { ...cached, stale: true };
      throw new ChainReadError(`cannot read the channel of key ${key}: RPC unavailable`, { cause });
    }
  }

  /** The current epoch, cached like channels. */
  async currentEpoch(options: { fresh?: boolean } = {}): Promise<bigint> {
    const now = this.#now();
    if (!options.fresh && this.#epoch && now - this.#epoch.readAt < this.#ttlMs) return this.#epoch.value;
    try {
      const value = await this.#client.readContract({
        address: this.#rewards,
        abi: epochRewardsAbi,
        functionName: "currentEpoch",
      });
      this.#epoch = { value, readAt: now };
      return value;
    } catch (cause) {
      if (this.#epoch) return this.#epoch.value;
      throw new ChainReadError("cannot read the current epoch: RPC unavailable", { cause });
    }
  }

  /** Forgets what was read for `key` (after a receipt batch changed its lock). */
  invalidate(key: Address): void {
    this.#cache.delete(key.toLowerCase());
  }
}

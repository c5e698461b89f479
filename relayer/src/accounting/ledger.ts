/**
 * What a relay's payment gate remembers of payers, per client key and per account, in bounded
 * memory: the relay's count of each key, what the chain paid it, what its receipts cover, and for
 * each account the sums over its keys that the gate judges against the account's one lock.
 *
 * An account may authorise any number of client keys, and every key is paid from the same lock
 * (docs/economics.md): judged key by key, N keys would each get the whole lock and an allowance.
 * So the ledger keeps, per account, `unpaid` = Σ max(0, bytes − paid) and `unreceipted` =
 * Σ max(0, bytes − receipted) over the account's keys, updated in O(1) on every cell.
 *
 * Keys are kept in least-recently-used order, at most `maxKeys` of them; a key with an open
 * circuit or a chain read under way is never dropped (those are bounded by the relay's circuits).
 * A dropped key loses only what no receipt of it covers (at most the slack): its receipted count
 * is in the store, and it resumes from there when it comes back. Pure: no I/O, no clock.
 */
import type { Address } from "viem";
import type { PayStopReason } from "../wire/payment.ts";

/** max(0, a − b) */
export const over = (a: bigint, b: bigint): bigint => (a > b ? a - b : 0n);

export interface KeyEntry {
  readonly id: string;
  readonly address: Address;
  /** The account the key belongs to, once a chain read said so; null before (or for an unknown key). */
  account: AccountEntry | null;
  /** The relay's cumulative count of the key's channel. */
  cells: bigint;
  bytes: bigint;
  /** Bytes the chain paid the key's receipts so far (channelOf). */
  paid: bigint;
  /** Bytes owed by the key's highest accepted (or stored) receipt. */
  receipted: bigint;
  stopped: PayStopReason | null;
  /**
   * Cells a receipt claimed beyond the relay's count that the relay took on the payer's word
   * (gate.ts): lost in flight, or only late. Late ones still arrive, on a circuit of the key
   * opened before the receipt came (`adoptedBefore`, a circuit serial) other than the receipt's
   * own (`adoptedOn`), until `adoptedUntil` (ms): those draw on this instead of being counted twice.
   */
  adopted: bigint;
  adoptedBefore: number;
  adoptedOn: number;
  adoptedUntil: number;
  /** Open circuits that named this key: while any is open, the key is never dropped. */
  circuits: number;
  /** A chain read of the key under way (the first one decides its account). */
  reading: Promise<void> | null;
}

export interface AccountEntry {
  readonly id: string;
  readonly keys: Set<KeyEntry>;
  /** Σ over its keys here of max(0, bytes − paid): what the relay carried that no receipt was paid for. */
  unpaid: bigint;
  /** Σ over its keys here of max(0, bytes − receipted): what the relay carried that no receipt covers. */
  unreceipted: bigint;
  /** What the account's lock for this relay still covers (0 once expired) + the allowance. */
  covered: bigint;
  /** The lock as last applied, and when it was read (reads may finish out of order). */
  lockLeft: bigint;
  lockExpires: bigint;
  lockReadAt: number;
}

export class PayerLedger {
  readonly #keys = new Map<string, KeyEntry>();
  readonly #accounts = new Map<string, AccountEntry>();
  readonly #maxKeys: number;
  readonly #allowance: bigint;

  constructor(options: { maxKeys: number; allowanceBytes: bigint }) {
    if (!Number.isInteger(options.maxKeys) || options.maxKeys < 1)
      throw new RangeError(`maxKeys must be a positive integer, got ${options.maxKeys}`);
    this.#maxKeys = options.maxKeys;
    this.#allowance = options.allowanceBytes;
  }

  /** Keys and accounts held now. */
  get size(): { keys: number; accounts: number } {
    return { keys: this.#keys.size, accounts: this.#accounts.size };
  }

  get(id: string): KeyEntry | undefined {
    return this.#keys.get(id);
  }

  /** Marks `key` as just used (the last to be dropped). */
  touch(key: KeyEntry): void {
    this.#keys.delete(key.id);
    this.#keys.set(key.id, key);
  }

  /** A key seen for the first time (or again after it was dropped), counting from `counts`. */
  add(address: Address, counts?: { cells: bigint; bytes: bigint }): KeyEntry {
    const id = address.toLowerCase();
    const key: KeyEntry = {
      id,
      address,
      account: null,
      cells: counts?.cells ?? 0n,
      bytes: counts?.bytes ?? 0n,
      paid: 0n,
      // A resumed count is what the key's kept receipts say: all of it is receipted.
      receipted: counts?.bytes ?? 0n,
      stopped: null,
      adopted: 0n,
      adoptedBefore: 0,
      adoptedOn: 0,
      adoptedUntil: 0,
      circuits: 0,
      reading: null,
    };
    this.#prune(this.#maxKeys - 1); // room first: the new key is never the one dropped
    this.#keys.set(id, key);
    return key;
  }

  /** The key belongs to account `accountId` (a key's account never changes on-chain). */
  assign(key: KeyEntry, accountId: string): AccountEntry {
    const id = accountId.toLowerCase();
    if (key.account?.id === id) return key.account;
    if (key.account) this.#detach(key);
    let account = this.#accounts.get(id);
    if (!account) {
      account = {
        id,
        keys: new Set(),
        unpaid: 0n,
        unreceipted: 0n,
        covered: this.#allowance,
        lockLeft: 0n,
        lockExpires: 0n,
        lockReadAt: -Infinity,
      };
      this.#accounts.set(id, account);
    }
    account.keys.add(key);
    account.unpaid += over(key.bytes, key.paid);
    account.unreceipted += over(key.bytes, key.receipted);
    key.account = account;
    return account;
  }

  /** Sets the key's counts (adding cells carried before its account was known, a resume), keeping the sums. */
  setCounts(key: KeyEntry, cells: bigint, bytes: bigint): void {
    const a = key.account;
    if (a) {
      a.unpaid += over(bytes, key.paid) - over(key.bytes, key.paid);
      a.unreceipted += over(bytes, key.receipted) - over(key.bytes, key.receipted);
    }
    key.cells = cells;
    key.bytes = bytes;
  }

  setPaid(key: KeyEntry, paid: bigint): void {
    if (key.account) key.account.unpaid += over(key.bytes, paid) - over(key.bytes, key.paid);
    key.paid = paid;
  }

  setReceipted(key: KeyEntry, receipted: bigint): void {
    if (key.account) key.account.unreceipted += over(key.bytes, receipted) - over(key.bytes, key.receipted);
    key.receipted = receipted;
  }

  /**
   * Counts one cell of `owed` bytes for a key whose account is known: the hot path, O(1) and
   * allocation-free. Returns the account, whose sums the caller compares.
   */
  count(key: KeyEntry, account: AccountEntry, owed: bigint): void {
    const before = key.bytes;
    key.cells += 1n;
    key.bytes = before + owed;
    if (key.bytes > key.paid) account.unpaid += before >= key.paid ? owed : key.bytes - key.paid;
    if (key.bytes > key.receipted) account.unreceipted += before >= key.receipted ? owed : key.bytes - key.receipted;
  }

  /** Accounts whose keys are all dropped are forgotten with them. */
  #detach(key: KeyEntry): void {
    const a = key.account;
    if (!a) return;
    a.unpaid -= over(key.bytes, key.paid);
    a.unreceipted -= over(key.bytes, key.receipted);
    a.keys.delete(key);
    if (a.keys.size === 0) this.#accounts.delete(a.id);
    key.account = null;
  }

  /**
   * Drops the least recently used keys until at most `keep` are left. Keys in use (an open circuit,
   * a read under way) go to the back instead: each is passed over at most once a round.
   */
  #prune(keep: number): void {
    let budget = this.#keys.size;
    while (this.#keys.size > keep && budget-- > 0) {
      const oldest = this.#keys.values().next().value as KeyEntry;
      if (oldest.circuits > 0 || oldest.reading !== null) {
        this.touch(oldest);
        continue;
      }
      this.#keys.delete(oldest.id);
      this.#detach(oldest);
    }
  }
}

/**
 * The payer's node's durable counts (node:sqlite, WAL, synchronous FULL): for every relay, the
 * counts of the newest receipt it signed, and the next lock-request nonce. A receipt's counts are
 * committed before the receipt leaves the node, so that a node restarted after a crash never signs
 * less than it already signed (a relay would take a lower receipt as under-payment) and never
 * reuses a nonce.
 */
import { DatabaseSync } from "node:sqlite";
import type { Address } from "viem";
import type { ChannelCount } from "./meter.ts";

/** Fixed-width hex (uint96), so that SQLite's text order is numeric order. */
function hex96(value: bigint): string {
  if (value < 0n || value >= 1n << 96n) throw new RangeError(`${value} does not fit 96 bits`);
  return value.toString(16).padStart(24, "0");
}

export class PayerStore {
  readonly #db: DatabaseSync;

  /** Opens (creating if needed) the store at `path` (":memory:" for a throwaway one). */
  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = FULL;
      CREATE TABLE IF NOT EXISTS channels (
        key      TEXT NOT NULL,
        relayer  TEXT NOT NULL,
        cells    TEXT NOT NULL,
        bytes    TEXT NOT NULL,
        PRIMARY KEY (key, relayer)
      );
      CREATE TABLE IF NOT EXISTS nonces (
        key      TEXT PRIMARY KEY,
        next     TEXT NOT NULL
      );
    `);
  }

  close(): void {
    this.#db.close();
  }

  /** Every relay's last signed counts for `key`. */
  channels(key: Address): Map<string, ChannelCount> {
    const rows = this.#db
      .prepare(`SELECT relayer, cells, bytes FROM channels WHERE key = ?`)
      .all(key.toLowerCase()) as { relayer: string; cells: string; bytes: string }[];
    return new Map(rows.map((r) => [r.relayer, { cells: BigInt(`0x${r.cells}`), bytes: BigInt(`0x${r.bytes}`) }]));
  }

  /** Records a receipt about to be sent (never lowers what is kept). */
  signed(key: Address, relayer: Address, count: ChannelCount): void {
    this.#db
      .prepare(
        `INSERT INTO channels (key, relayer, cells, bytes) VALUES (?, ?, ?, ?)
         ON CONFLICT (key, relayer) DO UPDATE SET cells = excluded.cells, bytes = excluded.bytes
         WHERE excluded.bytes > channels.bytes`,
      )
      .run(key.toLowerCase(), relayer.toLowerCase(), hex96(count.cells), hex96(count.bytes));
  }

  /** The next unused lock-request nonce of `key`, or undefined if none was ever used. */
  nextNonce(key: Address): bigint | undefined {
    const row = this.#db.prepare(`SELECT next FROM nonces WHERE key = ?`).get(key.toLowerCase()) as
      { next: string } | undefined;
    return row ? BigInt(`0x${row.next}`) : undefined;
  }

  /** Marks every nonce below `next` used. */
  useNonce(key: Address, next: bigint): void {
    this.#db
      .prepare(`INSERT INTO nonces (key, next) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET next = excluded.next`)
      .run(key.toLowerCase(), next.toString(16).padStart(64, "0"));
  }
}

/**
 * The relay's durable accounting: the latest payer receipt of every (epoch, client key), the
 * batches that carried them to the chain and what the chain said, in SQLite (node:sqlite, WAL).
 *
 * Every method commits before it returns, so what a caller acknowledges survives a SIGKILL at any
 * point (WAL with synchronous = NORMAL: a commit is in the WAL, in the OS, when it returns; it is
 * on the disk after the next `checkpoint()`, which the relay runs every 2 s — an OS crash or a power
 * cut may roll back the commits since, never corrupt the file). FULL would fsync every receipt
 * and block the event loop for milliseconds each time. A receipt is stored only if it owes more than the one already held (receipts are
 * cumulative per channel, so the newest is all that matters); storing a newer one puts the key
 * back in the queue even if an older receipt was already submitted. A batch is written *before*
 * its transaction is sent ("sending"), its hash right after ("sent"), its outcome after the chain
 * answers; on restart `unfinishedBatches` tells the settlement what to check or send again. Sending
 * a batch twice is harmless: the contract pays only the part of a cumulative receipt it has not paid.
 */
import { DatabaseSync } from "node:sqlite";
import type { Address, Hex } from "viem";
import type { SignedAttestation, SignedReceipt } from "./receipts.ts";

export type BatchStatus = "sending" | "sent" | "confirmed" | "failed";

/** What became of one receipt in a confirmed batch. */
export type ReceiptOutcome =
  | { kind: "paid" }
  /** Nothing new to pay: an older copy was paid already. Done. */
  | { kind: "settled" }
  /** The lock is empty for now: submit the same receipt again after the payer tops it up. */
  | { kind: "retry"; reason: string }
  /** The chain will never pay it (forged, unknown key, past the lock's expiry). */
  | { kind: "refused"; reason: string };

/** Where this relay's claim to the uptime bonus of an epoch stands. */
export type UptimeClaimStatus = "sending" | "sent" | "attested" | "failed" | "abandoned";

export interface UptimeClaim {
  epoch: bigint;
  status: UptimeClaimStatus;
  detail: string | null;
  txHashes: Hex[];
}

/** Attestations kept per epoch at most: more than any k governance may set (32). */
export const MAX_ATTESTATIONS_PER_EPOCH = 64;

export interface StoredReceipt extends SignedReceipt {
  epoch: bigint;
}

export interface Batch {
  id: number;
  epoch: bigint;
  status: BatchStatus;
  /** The newest transaction sent for it (null before one was). */
  txHash: Hex | null;
  /** Every transaction sent for it, oldest first: one nonce, replacements with higher fees. */
  txHashes: Hex[];
  keys: Address[];
}

const HEX96 = 24;
const HEX64 = 16;

/** Fixed-width hex, so that SQLite's text order is numeric order. */
function fixed(value: bigint, digits: number): string {
  if (value < 0n || value >= 1n << BigInt(digits * 4))
    throw new RangeError(`${value} does not fit ${digits} hex digits`);
  return value.toString(16).padStart(digits, "0");
}

export class AccountingStore {
  readonly #db: DatabaseSync;

  /**
   * Opens (creating if needed) the store at `path` (":memory:" for a throwaway one). `readOnly`
   * opens an existing store beside the running relay (`x0t status`) without writing anything.
   */
  constructor(path: string, options: { readOnly?: boolean } = {}) {
    this.#db = new DatabaseSync(path, { readOnly: options.readOnly ?? false });
    if (options.readOnly) return;
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      PRAGMA foreign_keys = ON;
      CREATE TABLE IF NOT EXISTS receipts (
        epoch     INTEGER NOT NULL,
        key       TEXT    NOT NULL,
        cells     TEXT    NOT NULL,
        bytes     TEXT    NOT NULL,
        r         TEXT    NOT NULL,
        vs        TEXT    NOT NULL,
        batch_id  INTEGER REFERENCES batches(id),
        outcome   TEXT,
        PRIMARY KEY (epoch, key)
      );
      CREATE TABLE IF NOT EXISTS batches (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        epoch     INTEGER NOT NULL,
        status    TEXT    NOT NULL,
        tx_hash   TEXT,
        error     TEXT,
        created   INTEGER NOT NULL,
        updated   INTEGER NOT NULL,
        block     INTEGER
      );
      CREATE INDEX IF NOT EXISTS receipts_queue ON receipts (epoch, batch_id);
      CREATE TABLE IF NOT EXISTS batch_txs (
        batch_id  INTEGER NOT NULL REFERENCES batches(id),
        seq       INTEGER NOT NULL,
        hash      TEXT    NOT NULL,
        PRIMARY KEY (batch_id, hash)
      );
      CREATE TABLE IF NOT EXISTS attestations (
        epoch        INTEGER NOT NULL,
        signer       TEXT    NOT NULL,
        probes       INTEGER NOT NULL,
        answered     INTEGER NOT NULL,
        measurements TEXT    NOT NULL,
        r            TEXT    NOT NULL,
        vs           TEXT    NOT NULL,
        received     INTEGER NOT NULL,
        dropped      TEXT,
        PRIMARY KEY (epoch, signer)
      );
      CREATE TABLE IF NOT EXISTS uptime_claims (
        epoch     INTEGER PRIMARY KEY,
        status    TEXT    NOT NULL,
        detail    TEXT,
        updated   INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS uptime_txs (
        epoch     INTEGER NOT NULL,
        seq       INTEGER NOT NULL,
        hash      TEXT    NOT NULL,
        PRIMARY KEY (epoch, hash)
      );
    `);
    // Stores written before batches knew their block get the column now (reorg checks need it).
    const columns = this.#db.prepare("PRAGMA table_info(batches)").all() as { name: string }[];
    if (!columns.some((c) => c.name === "block")) this.#db.exec("ALTER TABLE batches ADD COLUMN block INTEGER");
  }

  close(): void {
    this.#db.close();
  }

  /** Moves committed transactions from the WAL into the database file, syncing both (durable on disk). */
  checkpoint(): void {
    this.#db.exec("PRAGMA wal_checkpoint(PASSIVE)");
  }

  /** Runs `fn` in one transaction: all of it is committed, or none. */
  #transaction<T>(fn: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  /**
   * Keeps `receipt` if it owes more than the one held for its (epoch, key); returns whether it did.
   * A kept receipt waits for the next batch (even if an older one was already submitted).
   */
  saveReceipt(epoch: bigint, receipt: SignedReceipt): boolean {
    const result = this.#db
      .prepare(
        `INSERT INTO receipts (epoch, key, cells, bytes, r, vs) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (epoch, key) DO UPDATE SET
           cells = excluded.cells, bytes = excluded.bytes, r = excluded.r, vs = excluded.vs,
           batch_id = NULL, outcome = NULL
         WHERE excluded.bytes > receipts.bytes`,
      )
      .run(
        Number(epoch),
        receipt.key.toLowerCase(),
        fixed(receipt.cells, HEX64),
        fixed(receipt.bytes_, HEX96),
        receipt.r,
        receipt.vs,
      );
    return Number(result.changes) > 0;
  }

  /**
   * The highest counts any kept receipt of `key` carries (receipts are cumulative over the
   * channel's life, so this is where a restarted relay's count of that key starts again).
   */
  latestCounts(key: Address): { cells: bigint; bytes: bigint } | undefined {
    const row = this.#db
      .prepare(`SELECT MAX(cells) AS cells, MAX(bytes) AS bytes FROM receipts WHERE key = ?`)
      .get(key.toLowerCase()) as { cells: string | null; bytes: string | null } | undefined;
    if (!row || row.cells === null || row.bytes === null) return undefined;
    return { cells: BigInt(`0x${row.cells}`), bytes: BigInt(`0x${row.bytes}`) };
  }

  /** What `x0t status` shows of a relay's accounting in `epoch` (the current one). */
  summary(epoch: bigint) {
    const rows = this.#db.prepare(`SELECT cells FROM receipts WHERE epoch = ?`).all(Number(epoch)) as {
      cells: string;
    }[];
    const queuedEpochs = this.queuedEpochs();
    // The uptime bonus of the last few epochs: attestations held and where the claim stands.
    const uptime = (
      this.#db
        .prepare(
          `SELECT a.epoch AS epoch, COUNT(*) AS held, u.status AS status FROM attestations a
           LEFT JOIN uptime_claims u ON u.epoch = a.epoch WHERE a.dropped IS NULL AND a.epoch >= ?
           GROUP BY a.epoch ORDER BY a.epoch`,
        )
        .all(Number(epoch) - 4) as { epoch: number; held: number; status: string | null }[]
    ).map((r) => ({ epoch: BigInt(r.epoch), attestations: r.held, claim: r.status ?? "waiting" }));
    return {
      payersThisEpoch: rows.length,
      cellsThisEpoch: rows.reduce((sum, r) => sum + BigInt(`0x${r.cells}`), 0n),
      queuedEpochs,
      queued: queuedEpochs.reduce((sum, e) => sum + this.queued(e).length, 0),
      unfinishedBatches: this.unfinishedBatches().length,
      uptime,
    };
  }

  /** The receipts of `epoch` that no batch carries yet, or whose last outcome asks for a retry. */
  queued(epoch: bigint): StoredReceipt[] {
    const rows = this.#db
      .prepare(
        `SELECT r2.* FROM receipts r2 LEFT JOIN batches b ON b.id = r2.batch_id
         WHERE r2.epoch = ? AND (r2.outcome IS NULL OR r2.outcome LIKE 'retry%')
           AND (r2.batch_id IS NULL OR b.status IN ('failed', 'confirmed'))
         ORDER BY r2.key`,
      )
      .all(Number(epoch));
    return rows.map((row) => this.#toReceipt(row));
  }

  /** Epochs that still have queued receipts, oldest first. */
  queuedEpochs(): bigint[] {
    const rows = this.#db
      .prepare(
        `SELECT DISTINCT r2.epoch AS epoch FROM receipts r2 LEFT JOIN batches b ON b.id = r2.batch_id
         WHERE (r2.outcome IS NULL OR r2.outcome LIKE 'retry%')
           AND (r2.batch_id IS NULL OR b.status IN ('failed', 'confirmed'))
         ORDER BY r2.epoch`,
      )
      .all();
    return rows.map((row) => BigInt(row.epoch as number));
  }

  /** Records a batch of `keys`' receipts for `epoch` before its transaction is sent. */
  beginBatch(epoch: bigint, keys: readonly Address[]): number {
    const now = Date.now();
    return this.#transaction(() => {
      const { lastInsertRowid } = this.#db
        .prepare("INSERT INTO batches (epoch, status, created, updated) VALUES (?, 'sending', ?, ?)")
        .run(Number(epoch), now, now);
      const id = Number(lastInsertRowid);
      const assign = this.#db.prepare("UPDATE receipts SET batch_id = ?, outcome = NULL WHERE epoch = ? AND key = ?");
      for (const key of keys) assign.run(id, Number(epoch), key.toLowerCase());
      return id;
    });
  }

  /** A transaction for the batch (the first, or a replacement with higher fees) was handed to the RPC. */
  markSent(batchId: number, txHash: Hex): void {
    this.#transaction(() => {
      this.#db
        .prepare("UPDATE batches SET status = 'sent', tx_hash = ?, updated = ? WHERE id = ?")
        .run(txHash, Date.now(), batchId);
      this.#db
        .prepare(
          `INSERT OR IGNORE INTO batch_txs (batch_id, seq, hash)
           VALUES (?, (SELECT COUNT(*) FROM batch_txs WHERE batch_id = ?), ?)`,
        )
        .run(batchId, batchId, txHash);
    });
  }

  /** The chain mined the batch in `block`; `outcomes` says what became of each key's receipt. */
  markConfirmed(batchId: number, outcomes: ReadonlyMap<string, ReceiptOutcome>, block?: bigint): void {
    this.#transaction(() => {
      this.#db
        .prepare("UPDATE batches SET status = 'confirmed', updated = ?, block = ? WHERE id = ?")
        .run(Date.now(), block === undefined ? null : Number(block), batchId);
      const set = this.#db.prepare("UPDATE receipts SET outcome = ? WHERE batch_id = ? AND key = ?");
      for (const [key, outcome] of outcomes) {
        const text = "reason" in outcome ? `${outcome.kind}: ${outcome.reason}` : outcome.kind;
        set.run(text, batchId, key.toLowerCase());
      }
    });
  }

  /** The batch's transaction reverted or was never mined; its receipts go back to the queue. */
  markFailed(batchId: number, error: string): void {
    this.#db
      .prepare("UPDATE batches SET status = 'failed', error = ?, updated = ? WHERE id = ?")
      .run(error, Date.now(), batchId);
  }

  /**
   * A reorg took the confirmed batch's transaction out of the chain: the batch failed after all and
   * its receipts' outcomes are forgotten, so that they are queued and sent again.
   */
  markReorged(batchId: number, error: string): void {
    this.#transaction(() => {
      this.markFailed(batchId, error);
      this.#db.prepare("UPDATE receipts SET outcome = NULL WHERE batch_id = ?").run(batchId);
    });
  }

  /** Confirmed batches mined at or after `block` (the ones a reorg could still take out). */
  confirmedSince(block: bigint): Batch[] {
    const rows = this.#db
      .prepare("SELECT * FROM batches WHERE status = 'confirmed' AND block >= ? ORDER BY id")
      .all(Number(block));
    return rows.map((row) => this.#toBatch(row));
  }

  /** Gives up on `epoch`'s queued receipts (its submission window closed); returns how many. */
  abandon(epoch: bigint, reason: string): number {
    const queued = this.queued(epoch);
    const set = this.#db.prepare("UPDATE receipts SET outcome = ?, batch_id = NULL WHERE epoch = ? AND key = ?");
    this.#transaction(() => {
      for (const r of queued) set.run(`refused: ${reason}`, Number(epoch), r.key);
    });
    return queued.length;
  }

  /** Batches a crash or an outage left between "sending" and an outcome. */
  unfinishedBatches(): Batch[] {
    const rows = this.#db.prepare("SELECT * FROM batches WHERE status IN ('sending', 'sent') ORDER BY id").all();
    return rows.map((row) => this.#toBatch(row));
  }

  batch(id: number): Batch {
    const row = this.#db.prepare("SELECT * FROM batches WHERE id = ?").get(id);
    if (!row) throw new Error(`no batch ${id}`);
    return this.#toBatch(row);
  }

  /** The outcome text recorded for `key`'s receipt of `epoch` (null while none). */
  outcome(epoch: bigint, key: Address): string | null {
    const row = this.#db
      .prepare("SELECT outcome FROM receipts WHERE epoch = ? AND key = ?")
      .get(Number(epoch), key.toLowerCase());
    return (row?.outcome as string | null | undefined) ?? null;
  }

  /**
   * Keeps another relay's attestation of this relay's uptime in `epoch` (the caller checked its
   * signature and signer). False if one from that signer is held or the epoch holds the most.
   */
  saveAttestation(epoch: bigint, a: SignedAttestation): boolean {
    return this.#transaction(() => {
      const held = this.#db
        .prepare("SELECT COUNT(*) AS n FROM attestations WHERE epoch = ? AND dropped IS NULL")
        .get(Number(epoch)) as {
        n: number;
      };
      if (held.n >= MAX_ATTESTATIONS_PER_EPOCH) return false;
      const result = this.#db
        .prepare(
          `INSERT OR IGNORE INTO attestations (epoch, signer, probes, answered, measurements, r, vs, received)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(Number(epoch), a.signer.toLowerCase(), a.probes, a.answered, a.measurements, a.r, a.vs, Date.now());
      return Number(result.changes) > 0;
    });
  }

  /** Whether an attestation of `epoch` by `signer` is held already (checked before any signature work). */
  hasAttestation(epoch: bigint, signer: Address): boolean {
    return (
      this.#db
        .prepare("SELECT 1 FROM attestations WHERE epoch = ? AND signer = ?")
        .get(Number(epoch), signer.toLowerCase()) !== undefined
    );
  }

  /** Epochs from `from` on whose uptime bonus was recorded as attested (a reorg may still take it out). */
  attestedEpochsSince(from: bigint): bigint[] {
    return this.#db
      .prepare("SELECT epoch FROM uptime_claims WHERE status = 'attested' AND epoch >= ? ORDER BY epoch")
      .all(Number(from))
      .map((row) => BigInt(row.epoch as number));
  }

  /** The attestations of `epoch` not dropped, by signer ascending (the order submitUptime requires). */
  attestations(epoch: bigint): SignedAttestation[] {
    const rows = this.#db
      .prepare("SELECT * FROM attestations WHERE epoch = ? AND dropped IS NULL")
      .all(Number(epoch)) as Record<string, unknown>[];
    return rows
      .map((row) => ({
        signer: row.signer as Address,
        probes: row.probes as number,
        answered: row.answered as number,
        measurements: row.measurements as Hex,
        r: row.r as Hex,
        vs: row.vs as Hex,
      }))
      .sort((a, b) => (BigInt(a.signer) < BigInt(b.signer) ? -1 : 1));
  }

  /** The chain refused `signer`'s attestation of `epoch` (e.g. registered too late): not sent again. */
  dropAttestation(epoch: bigint, signer: Address, reason: string): void {
    this.#db
      .prepare("UPDATE attestations SET dropped = ? WHERE epoch = ? AND signer = ?")
      .run(reason, Number(epoch), signer.toLowerCase());
  }

  /** Epochs holding attestations whose uptime claim is not final yet, oldest first. */
  pendingUptimeEpochs(): bigint[] {
    const rows = this.#db
      .prepare(
        `SELECT DISTINCT a.epoch AS epoch FROM attestations a LEFT JOIN uptime_claims u ON u.epoch = a.epoch
         WHERE a.dropped IS NULL AND (u.status IS NULL OR u.status NOT IN ('attested', 'abandoned'))
         ORDER BY a.epoch`,
      )
      .all();
    return rows.map((row) => BigInt(row.epoch as number));
  }

  uptimeClaim(epoch: bigint): UptimeClaim | undefined {
    const row = this.#db.prepare("SELECT * FROM uptime_claims WHERE epoch = ?").get(Number(epoch));
    if (!row) return undefined;
    const txHashes = this.#db
      .prepare("SELECT hash FROM uptime_txs WHERE epoch = ? ORDER BY seq")
      .all(Number(epoch))
      .map((t) => t.hash as Hex);
    return {
      epoch,
      status: row.status as UptimeClaimStatus,
      detail: (row.detail as string | null) ?? null,
      txHashes,
    };
  }

  setUptimeClaim(epoch: bigint, status: UptimeClaimStatus, detail: string | null = null): void {
    this.#db
      .prepare(
        `INSERT INTO uptime_claims (epoch, status, detail, updated) VALUES (?, ?, ?, ?)
         ON CONFLICT (epoch) DO UPDATE SET status = excluded.status, detail = excluded.detail, updated = excluded.updated`,
      )
      .run(Number(epoch), status, detail, Date.now());
  }

  /** A submitUptime transaction for `epoch` (the first or a replacement) was handed to the RPC. */
  addUptimeTx(epoch: bigint, hash: Hex): void {
    this.#transaction(() => {
      this.#db
        .prepare(
          `INSERT OR IGNORE INTO uptime_txs (epoch, seq, hash)
           VALUES (?, (SELECT COUNT(*) FROM uptime_txs WHERE epoch = ?), ?)`,
        )
        .run(Number(epoch), Number(epoch), hash);
      this.setUptimeClaim(epoch, "sent", hash);
    });
  }

  /** A new submission for `epoch` starts: forget the hashes of one that was dropped or reverted. */
  clearUptimeTxs(epoch: bigint): void {
    this.#db.prepare("DELETE FROM uptime_txs WHERE epoch = ?").run(Number(epoch));
  }

  #toReceipt(row: Record<string, unknown>): StoredReceipt {
    return {
      epoch: BigInt(row.epoch as number),
      key: row.key as Address,
      cells: BigInt(`0x${row.cells as string}`),
      bytes_: BigInt(`0x${row.bytes as string}`),
      r: row.r as Hex,
      vs: row.vs as Hex,
    };
  }

  #toBatch(row: Record<string, unknown>): Batch {
    const id = row.id as number;
    const keys = this.#db
      .prepare("SELECT key FROM receipts WHERE batch_id = ? ORDER BY key")
      .all(id)
      .map((k) => k.key as Address);
    const txHash = (row.tx_hash as Hex | null) ?? null;
    const txHashes = this.#db
      .prepare("SELECT hash FROM batch_txs WHERE batch_id = ? ORDER BY seq")
      .all(id)
      .map((t) => t.hash as Hex);
    // Stores written before replacements were recorded hold the one hash in the batch row.
    if (txHashes.length === 0 && txHash !== null) txHashes.push(txHash);
    return {
      id,
      epoch: BigInt(row.epoch as number),
      status: row.status as BatchStatus,
      txHash,
      txHashes,
      keys,
    };
  }
}

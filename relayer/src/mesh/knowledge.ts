/**
 * The K of MAPE-K: what this node has measured of every other node, in SQLite (node:sqlite, WAL),
 * so that a restart does not forget who was slow, lossy or dead.
 *
 * Per node: round-trip time as an EWMA (α = 1/8, TCP's SRTT) and its jitter (RFC 3550: mean
 * absolute difference of successive samples, gain 1/16), loss as an EWMA of unanswered probes and
 * beacons (gain 1/16), failures (link closed, build failed, frozen) and when the node was last seen
 * and last failed. Per node and reward epoch: probes sent and answered and a running SHA-256 over
 * every outcome: exactly the `probes`, `answered` and `measurements` of an EpochRewards `Uptime`
 * attestation (contracts/EpochRewards.sol), so the figures a relay signs are the ones it routed by.
 *
 * Every write commits before it returns (synchronous = NORMAL under WAL: a power cut may lose the
 * last few samples, never corrupt the file; a process crash loses nothing).
 */
import { createHash } from "node:crypto";
import { DatabaseSync, type StatementSync } from "node:sqlite";

const RTT_GAIN = 1 / 8;
const JITTER_GAIN = 1 / 16;
const LOSS_GAIN = 1 / 16;

export type FailureKind = "closed" | "frozen" | "build" | "cell-error";

export interface NodeStats {
  node: string;
  /** Smoothed round-trip time, ms (undefined before the first answer). */
  rttMs: number | undefined;
  jitterMs: number;
  /** EWMA of unanswered probes, 0..1. */
  loss: number;
  /** Lifetime probes sent and answered (beacons and latency probes). */
  probes: number;
  answered: number;
  failures: number;
  /** Times (ms) of the last answer and the last failure; undefined if none. */
  lastSeen: number | undefined;
  lastFailure: number | undefined;
  lastFailureKind: FailureKind | undefined;
  /** Since when (ms) the node has answered without a failure (undefined while it is failing). */
  upSince: number | undefined;
}

/** What an uptime attestation for `node` in `epoch` states. */
export interface UptimeFigures {
  probes: number;
  answered: number;
  /** 0x + SHA-256 chain over every probe outcome of the epoch (commits to the attester's log). */
  measurements: `0x${string}`;
}

export interface ProbeOutcome {
  /** When the probe was sent (ms). */
  at: number;
  /** Round trip in ms, or undefined if it was never answered. */
  rttMs: number | undefined;
  /** The reward epoch it counts in (uptime attestations); undefined: not counted. */
  epoch?: bigint;
}

interface Row {
  node: string;
  rtt: number | null;
  jitter: number;
  loss: number;
  probes: number;
  answered: number;
  failures: number;
  last_seen: number | null;
  last_failure: number | null;
  last_failure_kind: string | null;
  up_since: number | null;
  last_rtt: number | null;
}

const ZERO_HASH = `0x${"0".repeat(64)}` as const;

export class Knowledge {
  readonly #db: DatabaseSync;
  readonly #get: StatementSync;
  readonly #put: StatementSync;
  readonly #getEpoch: StatementSync;
  readonly #putEpoch: StatementSync;

  /** Opens (creating if needed) the knowledge base at `path` (":memory:" for a throwaway one). */
  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      CREATE TABLE IF NOT EXISTS nodes (
        node              TEXT PRIMARY KEY,
        rtt               REAL,
        jitter            REAL    NOT NULL DEFAULT 0,
        loss              REAL    NOT NULL DEFAULT 0,
        probes            INTEGER NOT NULL DEFAULT 0,
        answered          INTEGER NOT NULL DEFAULT 0,
        failures          INTEGER NOT NULL DEFAULT 0,
        last_seen         INTEGER,
        last_failure      INTEGER,
        last_failure_kind TEXT,
        up_since          INTEGER,
        last_rtt          REAL
      );
      CREATE TABLE IF NOT EXISTS uptime (
        node         TEXT    NOT NULL,
        epoch        TEXT    NOT NULL,
        probes       INTEGER NOT NULL,
        answered     INTEGER NOT NULL,
        measurements TEXT    NOT NULL,
        PRIMARY KEY (node, epoch)
      );
    `);
    this.#get = this.#db.prepare("SELECT * FROM nodes WHERE node = ?");
    this.#put = this.#db.prepare(`
      INSERT INTO nodes (node, rtt, jitter, loss, probes, answered, failures, last_seen, last_failure,
                         last_failure_kind, up_since, last_rtt)
      VALUES (:node, :rtt, :jitter, :loss, :probes, :answered, :failures, :last_seen, :last_failure,
              :last_failure_kind, :up_since, :last_rtt)
      ON CONFLICT(node) DO UPDATE SET rtt = excluded.rtt, jitter = excluded.jitter, loss = excluded.loss,
        probes = excluded.probes, answered = excluded.answered, failures = excluded.failures,
        last_seen = excluded.last_seen, last_failure = excluded.last_failure,
        last_failure_kind = excluded.last_failure_kind, up_since = excluded.up_since, last_rtt = excluded.last_rtt`);
    this.#getEpoch = this.#db.prepare("SELECT * FROM uptime WHERE node = ? AND epoch = ?");
    this.#putEpoch = this.#db.prepare(`
      INSERT INTO uptime (node, epoch, probes, answered, measurements) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(node, epoch) DO UPDATE SET probes = excluded.probes, answered = excluded.answered,
        measurements = excluded.measurements`);
  }

  #row(node: string): Row {
    return (
      (this.#get.get(node) as Row | undefined) ?? {
        node,
        rtt: null,
        jitter: 0,
        loss: 0,
        probes: 0,
        answered: 0,
        failures: 0,
        last_seen: null,
        last_failure: null,
        last_failure_kind: null,
        up_since: null,
        last_rtt: null,
      }
    );
  }

  #save(r: Row): void {
    this.#put.run({ ...r } as unknown as Record<string, string | number | null>);
  }

  /** Records a beacon or latency probe and its answer (or its absence). */
  recordProbe(node: string, outcome: ProbeOutcome): void {
    const r = this.#row(node);
    r.probes++;
    const answered = outcome.rttMs !== undefined;
    r.loss += ((answered ? 0 : 1) - r.loss) * LOSS_GAIN;
    if (answered) {
      const rtt = outcome.rttMs as number;
      r.answered++;
      if (r.last_rtt !== null) r.jitter += (Math.abs(rtt - r.last_rtt) - r.jitter) * JITTER_GAIN;
      r.rtt = r.rtt === null ? rtt : r.rtt + (rtt - r.rtt) * RTT_GAIN;
      r.last_rtt = rtt;
      r.last_seen = outcome.at + rtt;
      if (r.up_since === null) r.up_since = outcome.at;
    }
    this.#db.exec("BEGIN");
    try {
      this.#save(r);
      if (outcome.epoch !== undefined) this.#countEpoch(node, outcome);
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  #countEpoch(node: string, outcome: ProbeOutcome): void {
    const epoch = (outcome.epoch as bigint).toString();
    const held = this.#getEpoch.get(node, epoch) as
      { probes: number; answered: number; measurements: string } | undefined;
    const previous = held?.measurements ?? ZERO_HASH;
    const line = `${outcome.at}:${outcome.rttMs === undefined ? "-" : outcome.rttMs.toFixed(3)}`;
    const next = "0x" + createHash("sha256").update(previous).update(line).digest("hex");
    this.#putEpoch.run(
      node,
      epoch,
      (held?.probes ?? 0) + 1,
      (held?.answered ?? 0) + (outcome.rttMs === undefined ? 0 : 1),
      next,
    );
  }

  /** Records a failure of `node` (its link closed, a build through it failed, it froze). */
  recordFailure(node: string, at: number, kind: FailureKind): void {
    const r = this.#row(node);
    r.failures++;
    r.last_failure = at;
    r.last_failure_kind = kind;
    r.up_since = null;
    this.#save(r);
  }

  stats(node: string): NodeStats {
    const r = this.#row(node);
    return {
      node,
      rttMs: r.rtt ?? undefined,
      jitterMs: r.jitter,
      loss: r.loss,
      probes: r.probes,
      answered: r.answered,
      failures: r.failures,
      lastSeen: r.last_seen ?? undefined,
      lastFailure: r.last_failure ?? undefined,
      lastFailureKind: (r.last_failure_kind as FailureKind | null) ?? undefined,
      upSince: r.up_since ?? undefined,
    };
  }

  /** Every node measured, worst loss first. */
  all(): NodeStats[] {
    const rows = this.#db.prepare("SELECT node FROM nodes ORDER BY loss DESC, node").all() as { node: string }[];
    return rows.map((r) => this.stats(r.node));
  }

  /** The figures an uptime attestation of `node` for `epoch` states (zero if never probed). */
  uptime(node: string, epoch: bigint): UptimeFigures {
    const held = this.#getEpoch.get(node, epoch.toString()) as
      { probes: number; answered: number; measurements: `0x${string}` } | undefined;
    return held
      ? { probes: held.probes, answered: held.answered, measurements: held.measurements }
      : { probes: 0, answered: 0, measurements: ZERO_HASH };
  }

  /** Forgets epochs before `epoch` (attestations for them can no longer be submitted). */
  pruneEpochsBefore(epoch: bigint): void {
    // Epochs are stored as decimal text: compare as integers.
    this.#db.prepare("DELETE FROM uptime WHERE CAST(epoch AS INTEGER) < ?").run(Number(epoch));
  }

  close(): void {
    this.#db.close();
  }
}

/**
 * A health score in 0..1 for route choice from what is known: loss and recent failures weigh it
 * down; a node never measured gets `unknown` (default 0.5: tried, but after the measured good ones).
 */
export function healthScore(s: NodeStats, now: number, options: { unknown?: number; failureMemoryMs?: number } = {}) {
  if (s.probes === 0 && s.failures === 0) return options.unknown ?? 0.5;
  const memory = options.failureMemoryMs ?? 10 * 60_000;
  const sinceFailure = s.lastFailure === undefined ? Infinity : now - s.lastFailure;
  // A failure weighs fully at once and fades linearly over `memory`.
  const failurePenalty = sinceFailure >= memory ? 0 : 1 - sinceFailure / memory;
  return Math.max(0, Math.min(1, (1 - s.loss) * (1 - 0.9 * failurePenalty)));
}

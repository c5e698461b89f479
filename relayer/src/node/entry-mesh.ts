/**
 * The entry's MAPE-K loop (docs/self-healing.md): Monitor beacons every hop of every circuit in
 * use, Analyze judges each hop from what came back, Execute acts through the circuit pool, and
 * Knowledge (SQLite) keeps what was measured of every relay across restarts.
 *
 * - Beacons are the circuit-level PROBE/PROBED relay messages: a PROBE to hop k, which that hop
 *   answers for itself, so the first silent hop of a circuit is known at once (the hops behind it
 *   cannot answer either and are not judged from that circuit). A circuit's stream traffic from
 *   the exit answers for every hop: a busy circuit is not asked.
 * - Pace: every `beaconIntervalMs` (500 ms) while the entry waits on the circuit (a stream opening,
 *   or stream cells sent since the exit last sent any: a request, a SENDME with a download behind
 *   it), every `idleBeaconIntervalMs` otherwise. So a paid circuit is asked often only while
 *   someone waits on it and it is silent: every beacon cell is paid for like any cell
 *   (docs/self-healing.md, "What beacons cost").
 * - Link closes and cells that fail their checks are observations: the link to a circuit's first
 *   hop closing is that relay dead at once; a relay further on that loses its link makes its
 *   neighbour destroy the circuit with "link closed", which does not say which relay died, so the
 *   entry connects to each of those hops (a crashed relay refuses at once) and the one that cannot
 *   be reached is dead.
 * - Idle relays of the directory get a latency probe (a link handshake) every 30 s.
 */
import { AuthenticationError } from "../crypto/cipher.ts";
import type { CircuitError } from "../circuit/client.ts";
import { Link } from "../link/link.ts";
import type { LogFields, Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { type AnalyzeOptions, DEFAULT_ANALYZE, type HopState, type HopVerdict } from "../mesh/analyze.ts";
import { judgeCircuits, RANK } from "../mesh/judge.ts";
import { Counters } from "../mesh/counters.ts";
import { decide, Executor } from "../mesh/execute.ts";
import { healthScore, type Knowledge, type NodeStats } from "../mesh/knowledge.ts";
import { Monitor } from "../mesh/monitor.ts";
import { DestroyReason } from "../wire/cell.ts";
import { type CircuitPool, type NodeInfo, nodeId, type PooledCircuit } from "./circuit-pool.ts";
import type { DirectoryEntry } from "./directory.ts";

export interface EntryMeshOptions {
  knowledge: Knowledge;
  /** Relays to give latency probes to (the same directory the pool builds from). */
  directory: () => DirectoryEntry[];
  /** Beacons on a busy circuit (default 500 ms). */
  beaconIntervalMs?: number;
  /** Beacons on a circuit without stream traffic (default: the busy interval). */
  idleBeaconIntervalMs?: number;
  /** A circuit whose exit sent stream cells within this is not asked (default 150 ms). */
  quietMs?: number;
  /** Latency probes to relays not in use (default 30 s; 0: none). */
  probeIntervalMs?: number;
  /** A connect + handshake probe must finish within this (default 2 s). */
  probeTimeoutMs?: number;
  /** How often the loop runs (default 25 ms: the resolution of detection). */
  tickMs?: number;
  analyze?: AnalyzeOptions;
  counters?: Counters;
  logger?: Logger;
}

interface Watched {
  pc: PooledCircuit;
  links: string[];
  /** Hops not beaconed while a hop before them is silent (they cannot answer through it). */
  paused: Set<number>;
  streamIn: number;
  streamOut: number;
  /** When stream cells last came from the exit, and last went to it. */
  lastIn: number;
  lastOut: number;
}

/**
 * The entry's analysis rules: analyze.ts's defaults, but
 * - a hop is frozen once a beacon waits 200 ms on a fast path (the floor; RTT + 4 jitters times 4
 *   above it): with a beacon every 500 ms that puts the median detection under 0.5 s;
 * - a circuit whose hop went silent is closed only after 40 missed beacons or 20 s of silence,
 *   whichever comes first (a paid idle circuit is beaconed every 30 s, and its silent hop at the
 *   busy pace once judged): streams carrying data survive a pause or a short freeze (new streams
 *   are moved at the first overdue beacon);
 * - a latency spike must hold for six beacons (3 s) and add 250 ms to the baseline before circuits
 *   are moved for it (less is noise on a busy machine, and little for a user).
 */
export const ENTRY_ANALYZE: AnalyzeOptions = {
  ...DEFAULT_ANALYZE,
  frozenMinMs: 200,
  deadMissed: 40,
  deadAfterMs: 20_000,
  spikeSamples: 6,
  spikeMinMs: 250,
};
/** Suspicion left to a relay whose silence ended before it was judged dead (ms). */
const RECOVERED_SUSPECT_MS = 120_000;
/**
 * A relay is blamed for what it passes on when, within this window, relays behind it on at least
 * `BLAME_DISTINCT` circuits went silent there while answering a direct check, or circuits through
 * it failed authentication that often. One such event says little (a lossy link into the next
 * relay stalls its beacons too); a relay that drops or corrupts cells causes them on every circuit.
 */
const BLAME_WINDOW_MS = 20_000;
const BLAME_DISTINCT = 2;
/** How long the relays of a circuit that failed authentication are avoided (provisionally). */
const AUTH_AVOID_MS = 5_000;
/** How long a relay that answered a direct check is taken as alive when seen silent behind another. */
const ALIVE_MS = 30_000;
/** How long a dead or frozen relay is avoided (the executor's term for them). */
const DEAD_SUSPECT_MS = 600_000;
const BEACON_FLAG = 1n << 63n;

/** Connects to `relay` and completes a link handshake; resolves with the time taken, ms. */
export async function connectProbe(relay: DirectoryEntry, timeoutMs: number): Promise<number> {
  const started = performance.now();
  const link = await Link.connect(relay.host, relay.port, relay.keys, { handshakeTimeoutMs: timeoutMs });
  const ms = performance.now() - started;
  link.close();
  return ms;
}

export class EntryMesh {
  readonly monitor: Monitor;
  readonly executor: Executor;
  readonly counters: Counters;
  readonly knowledge: Knowledge;
  readonly #o: EntryMeshOptions;
  readonly #log: Logger;
  readonly #analyze: AnalyzeOptions;
  #pool: CircuitPool | undefined;
  readonly #watched = new Map<string, Watched>();
  readonly #links = new Map<string, { w: Watched; hop: number }>();
  /**
   * The verdict being acted on per node, and since when: an episode lasts until the node answers
   * again (an echo or traffic after it began), not merely until no link of it looks bad.
   */
  readonly #states = new Map<string, HopState>();
  readonly #since = new Map<string, number>();
  /** When a node was last declared dead by an event (link closed, probe refused): one episode. */
  readonly #deadAt = new Map<string, number>();
  readonly #stats = new Map<string, { at: number; stats: NodeStats }>();
  readonly #probing = new Set<string>();
  /** Relays that answered a direct check after being seen silent behind another hop: until when. */
  readonly #aliveUntil = new Map<string, number>();
  /** Per relay: the relays behind it seen silent (or failing builds) while alive, within the window. */
  readonly #evidence = new Map<string, { other: string; at: number }[]>();
  /** When each relay was last blamed for what it passes on (one conviction per term). */
  readonly #convictedAt = new Map<string, number>();
  /** Circuits that failed authentication within the window (at most 64). */
  #authFailures: { at: number; id: string; nodes: readonly string[] }[] = [];
  /** Relays of the directory by node id (latency probes), refreshed every few seconds. */
  #known = new Map<string, DirectoryEntry>();
  #knownAt = 0;
  #standbysAt = 0;
  #stallLoggedAt = 0;
  /** When the last pass ran, and until when silences are not judged after this process stalled. */
  #lastTick = 0;
  #graceUntil = 0;
  #timer: NodeJS.Timeout | undefined;
  /** After close(): answers still in flight are dropped (Knowledge may be closed). */
  #closed = false;

  constructor(options: EntryMeshOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#analyze = options.analyze ?? ENTRY_ANALYZE;
    this.counters = options.counters ?? new Counters();
    this.knowledge = options.knowledge;
    this.monitor = new Monitor({
      now: Date.now,
      // An echo that comes back while its relay is judged silent (a freeze ending, +600 ms of
      // latency) is no round-trip sample: it would raise the relay's RTT and jitter, and so its
      // frozen threshold, for minutes. It counts as a beacon not answered in time.
      knowledge: {
        recordProbe: (node, outcome) =>
          options.knowledge.recordProbe(
            node,
            RANK[this.#states.get(node) ?? "ok"] >= RANK.frozen ? { ...outcome, rttMs: undefined } : outcome,
          ),
        recordFailure: (node, at, kind) => options.knowledge.recordFailure(node, at, kind),
      },
      beaconIntervalMs: options.beaconIntervalMs ?? 500,
      quietMs: options.quietMs ?? 150,
      probeIntervalMs: options.probeIntervalMs || 30_000,
      firstProbeWithinMs: 2_000,
      counters: this.counters,
      logger: this.#log,
      rttOf: (link, rtt) => {
        const at = this.#links.get(link);
        if (!at || at.hop === 0) return rtt;
        return rtt - (this.monitor.rtt(at.w.links[at.hop - 1] as string) ?? 0);
      },
      effects: {
        sendBeacon: (link, seq) => {
          const at = this.#links.get(link);
          if (!at) return;
          const nonce = Buffer.alloc(8);
          nonce.writeBigUInt64BE(BEACON_FLAG | BigInt(seq));
          at.w.pc.circuit.beacon(at.hop, nonce);
        },
        sendProbe: (node, seq) => {
          const relay = this.#known.get(node);
          if (!relay) return;
          // A probe may come back after close(): Knowledge's database is closed by then.
          connectProbe(relay, options.probeTimeoutMs ?? 2_000).then(
            (ms) => this.#closed || this.monitor.probeAnswered(node, seq, ms / 2),
            () => this.#closed || this.monitor.probeFailed(node, seq),
          );
        },
      },
    });
    this.executor = new Executor(
      {
        suspect: (node, ms, why) => this.#pool?.suspect(node, ms, why),
        promoteStandby: (isolation, circuit) => this.#pool?.promote(isolation, circuit),
        rebuild: (isolation, role, avoid) => this.#pool?.rebuild(isolation, role, avoid),
        retryStream: (stream) => {
          for (const pc of this.#pool?.circuits() ?? []) pc.pending.get(stream)?.();
        },
        retire: (circuit) => this.#pool?.retire(circuit),
        close: (circuit) => this.#pool?.closeCircuit(circuit),
      },
      { counters: this.counters, logger: this.#log },
    );
  }

  /** Starts the loop over `pool`'s circuits. */
  bind(pool: CircuitPool): void {
    this.#pool = pool;
    this.#timer = setInterval(() => this.tick(), this.#o.tickMs ?? 25);
    this.#timer.unref();
  }

  /** A decision the pool took by itself: one log line and one count, as the executor's. */
  decision(action: string, fields: LogFields): void {
    this.counters.inc("mesh_decisions", { action });
    this.#log.info("mesh decision", { action, ...fields });
  }

  #statsOf(node: string, now: number): NodeStats {
    const held = this.#stats.get(node);
    if (held && now - held.at < 1_000) return held.stats;
    const stats = this.knowledge.stats(node);
    this.#stats.set(node, { at: now, stats });
    return stats;
  }

  /** Route choice's view of a node: health, smoothed RTT, the verdict being acted on. */
  nodeInfo(id: string): NodeInfo {
    const now = Date.now();
    const stats = this.#statsOf(id, now);
    const state = this.#states.get(id);
    return { health: healthScore(stats, now), rttMs: stats.rttMs, ...(state ? { state } : {}) };
  }

  /** A new circuit: beacon each of its hops from now on. */
  watch(pc: PooledCircuit): void {
    const w: Watched = {
      pc,
      links: pc.nodes.map((_, hop) => `${pc.id}/${hop}`),
      paused: new Set(),
      streamIn: pc.circuit.streamCellsIn,
      streamOut: pc.circuit.streamCellsOut,
      lastIn: Date.now(),
      lastOut: Date.now(),
    };
    this.#watched.set(pc.id, w);
    const idle = this.#o.idleBeaconIntervalMs ?? this.#o.beaconIntervalMs ?? 500;
    w.links.forEach((link, hop) => {
      this.#links.set(link, { w, hop });
      this.monitor.linkInUse(link, pc.nodes[hop] as string, idle);
    });
    pc.circuit.onBeaconEcho = (hop, nonce) => {
      const link = w.links[hop];
      if (link) this.monitor.echo(link, Number(nonce.readBigUInt64BE() & ~BEACON_FLAG));
    };
  }

  /** A circuit closed: stop beaconing it, and learn from why it closed. */
  closed(pc: PooledCircuit, error: CircuitError): void {
    const w = this.#watched.get(pc.id);
    if (w) {
      this.#watched.delete(pc.id);
      for (const link of w.links) {
        this.#links.delete(link);
        this.monitor.linkReleased(link);
      }
    }
    if (this.#pool?.closing || error.reason === DestroyReason.requested || error.reason === DestroyReason.payment)
      return;
    const now = Date.now();
    if (error.reason === DestroyReason.linkClosed && error.hop === 0) {
      // Our own link to the first hop closed under circuits: that relay (or the way to it) is gone.
      const kind = error.cause instanceof AuthenticationError ? "cell-error" : "closed";
      this.#eventDead(pc.nodes[0] as string, kind, kind === "closed" ? "its link closed" : "a cell failed its checks");
    } else if (error.reason === DestroyReason.linkClosed) {
      // A relay on the path lost its link to the next one: find which of them cannot be reached.
      for (let hop = 1; hop < pc.path.length; hop++) this.#probeDead(pc.path[hop] as DirectoryEntry);
    } else if (error.reason === DestroyReason.authentication) {
      // Some hop saw a cell fail its checks (or says so: the reason byte is the hop's word); which
      // one tampered cannot be told from one circuit, and charging them all would let one relay
      // cut the health of every relay it shares circuits with. A relay on several such circuits
      // in a short time is blamed, and only then is it a failure in Knowledge.
      this.counters.inc("mesh_link_failures", { kind: "cell-error" });
      this.#authFailed(pc, now);
    }
  }

  /** A node found dead by an event: acted on once per episode. */
  #eventDead(node: string, kind: "closed" | "cell-error", reason: string): void {
    const now = Date.now();
    this.knowledge.recordFailure(node, now, kind);
    this.counters.inc("mesh_link_failures", { kind });
    const last = this.#deadAt.get(node);
    if (last !== undefined && now - last < 10_000) return;
    this.#deadAt.set(node, now);
    this.#act(node, { state: "dead", reason, since: now });
  }

  /** Connects to `relay`; if that fails, it is dead (a crashed relay refuses at once). */
  #probeDead(relay: DirectoryEntry): void {
    const node = nodeId(relay);
    if (this.#probing.has(node)) return;
    this.#probing.add(node);
    this.counters.inc("mesh_probes_sent");
    connectProbe(relay, this.#o.probeTimeoutMs ?? 2_000)
      .then(
        () => {},
        (error: Error) => {
          if (this.#closed) return;
          this.counters.inc("mesh_probes_lost");
          this.#eventDead(node, "closed", `unreachable after a circuit through it lost a link: ${error.message}`);
        },
      )
      .finally(() => this.#probing.delete(node));
  }

  /**
   * Evidence against `node` (a silent relay behind it that was alive, or a circuit through it that
   * failed authentication): at `BLAME_DISTINCT` distinct ones within the window it is suspected as
   * a relay that drops or corrupts what it passes on — it still answers for itself, so the judge's
   * episodes (which end when a relay answers) do not manage its suspicion: it lasts the full term.
   */
  #blame(node: string, other: string, now: number, what: string): void {
    const pool = this.#pool;
    if (!pool || pool.closing) return;
    const held = (this.#evidence.get(node) ?? []).filter((e) => now - e.at < BLAME_WINDOW_MS && e.other !== other);
    held.push({ other, at: now });
    this.#evidence.set(node, held);
    if (held.length < BLAME_DISTINCT || this.#convictedRecently(node, now)) return;
    this.#evidence.delete(node);
    this.#convict(node, now, `${what} (${held.map((e) => pool.nameOf(e.other)).join(", ")})`);
  }

  /**
   * A circuit failed authentication: some hop of it tampered. Across the failures of the last
   * window, the relay on more of them than any other — on at least `BLAME_DISTINCT` — is the one
   * blamed; a tie names nobody yet (a relay that corrupts breaks every circuit through it at once,
   * so its honest co-hops each share only a few of them with it).
   */
  #authFailed(pc: PooledCircuit, now: number): void {
    const pool = this.#pool;
    if (!pool || pool.closing) return;
    const recent = this.#authFailures.filter((f) => now - f.at < BLAME_WINDOW_MS).slice(-63);
    recent.push({ at: now, id: pc.id, nodes: pc.nodes });
    const counts = new Map<string, number>();
    for (const f of recent) for (const n of f.nodes) counts.set(n, (counts.get(n) ?? 0) + 1);
    const ranked = [...counts].sort((a, b) => b[1] - a[1]);
    const [top, second] = ranked;
    this.#authFailures = recent;
    const blamed =
      top && top[1] >= BLAME_DISTINCT && !(second && second[1] === top[1]) && !this.#convictedRecently(top[0], now);
    // The others are avoided for a moment: the next circuits take other relays, so that the next
    // failure (if the culprit is among them) has other co-hops and the failures tell it apart.
    for (const node of pc.nodes)
      if ((!blamed || node !== top[0]) && !pool.suspects().has(node))
        pool.suspect(node, AUTH_AVOID_MS, `on a circuit that failed authentication (provisional: ${pc.id})`);
    if (!blamed) return;
    // Explained: the failures through it are not evidence against anyone else.
    this.#authFailures = recent.filter((f) => !f.nodes.includes(top[0]));
    const ids = recent.filter((f) => f.nodes.includes(top[0])).map((f) => f.id);
    this.#convict(top[0], now, `circuits through it failed authentication (${ids.join(", ")})`);
  }

  #convictedRecently(node: string, now: number): boolean {
    const at = this.#convictedAt.get(node);
    return at !== undefined && now - at < DEAD_SUSPECT_MS;
  }

  /** Suspects a relay that drops or corrupts what it passes on, for the full term. */
  #convict(node: string, now: number, reason: string): void {
    const pool = this.#pool;
    if (!pool) return;
    this.#convictedAt.set(node, now);
    this.knowledge.recordFailure(node, now, "cell-error");
    this.#stats.delete(node);
    this.executor.onVerdict(node, { state: "frozen", reason, since: now }, pool.views(), {
      relay: pool.nameOf(node),
      why: reason,
    });
  }

  /**
   * `node` failed behind other hops (`before`: the relays just before it where it went silent, or
   * the relay asked to extend to it in a build that failed, or a probe's silent hop): connect to it
   * directly. A relay that answers is alive and its suspicion is lifted: the relay before it is
   * what went wrong there (it drops what it should pass on, or its link to `node` is stuck), and
   * that is evidence against it. One that does not answer is suspected for the full term.
   */
  checkBehind(node: string, before: readonly string[], failure: "frozen" | "build", what: string): void {
    const relay =
      this.#known.get(node) ??
      this.#pool
        ?.circuits()
        .flatMap((pc) => pc.path)
        .find((r) => nodeId(r) === node);
    if (!relay || this.#probing.has(node)) return;
    this.#probing.add(node);
    this.counters.inc("mesh_probes_sent");
    connectProbe(relay, this.#o.probeTimeoutMs ?? 2_000)
      .then(
        () => {
          if (this.#closed) return;
          const now = Date.now();
          this.#aliveUntil.set(node, now + ALIVE_MS);
          this.#pool?.relax(node, 0);
          if (this.#states.has(node)) this.#endEpisode(node);
          const names = [...new Set(before)].map((b) => this.#pool?.nameOf(b) ?? b);
          this.#log.info("relay that failed behind another answers directly: the hop before it is in question", {
            relay: this.#pool?.nameOf(node),
            before: names.join(", "),
            what,
          });
          for (const b of new Set(before))
            this.#blame(b, node, now, `relays behind it failed (${failure}) while answering directly`);
        },
        (error: Error) => {
          if (this.#closed) return;
          this.counters.inc("mesh_probes_lost");
          this.knowledge.recordFailure(node, Date.now(), failure);
          this.#stats.delete(node);
          this.#pool?.suspect(node, DEAD_SUSPECT_MS, `${what}; no answer to a direct check either (${error.message})`);
        },
      )
      .finally(() => this.#probing.delete(node));
  }

  /**
   * A build through `node` failed at that hop: Knowledge remembers it (route choice weighs it).
   * Past the first hop (`before` was asked to extend to it) it is checked directly first.
   */
  buildFailed(node: string, before?: string): void {
    if (before) return this.checkBehind(node, [before], "build", "a circuit build failed there");
    this.knowledge.recordFailure(node, Date.now(), "build");
    this.#stats.delete(node);
  }

  /** Acts on a verdict; `provisionalMs` suspects the node only that long (a direct check is under way). */
  #act(node: string, verdict: HopVerdict, provisionalMs?: number): void {
    const pool = this.#pool;
    if (!pool || pool.closing) return;
    if (!this.#states.has(node)) this.#since.set(node, Date.now());
    this.#states.set(node, verdict.state);
    this.#stats.delete(node);
    const context = { relay: pool.nameOf(node), why: verdict.reason };
    if (provisionalMs === undefined) {
      this.executor.onVerdict(node, verdict, pool.views(), context);
      return;
    }
    const decisions = decide(node, verdict, pool.views()).map((d) =>
      d.action === "suspect" ? { ...d, ms: provisionalMs, why: `${d.why} (provisional: checked directly)` } : d,
    );
    this.executor.apply(decisions, { node, state: verdict.state, ...context });
  }

  /**
   * One pass: traffic and pace, beacons due, standbys, the known relays; then, once the event loop
   * has read what arrived meanwhile (setImmediate runs after I/O), the verdicts. Judging in the
   * timer itself would count echoes still waiting in the socket after a stall of this process as
   * missing.
   */
  tick(): void {
    // A pass that comes late means this process (or the whole machine) did not run for a while:
    // the relays' answers may be on their way, so silences are not judged for a moment.
    const now = Date.now();
    const tickMs = this.#o.tickMs ?? 25;
    if (this.#lastTick > 0 && now - this.#lastTick > 4 * tickMs) this.#graceUntil = now + this.#analyze.frozenMinMs;
    this.#lastTick = now;
    this.#step();
    setImmediate(() => {
      if (this.#timer !== undefined) this.#judge(Date.now());
    });
  }

  #step(): void {
    const pool = this.#pool;
    if (!pool) return;
    const now = Date.now();
    const busyPace = this.#o.beaconIntervalMs ?? 500;
    const idlePace = this.#o.idleBeaconIntervalMs ?? busyPace;
    for (const w of this.#watched.values()) {
      const c = w.pc.circuit;
      if (c.streamCellsIn !== w.streamIn) {
        w.streamIn = c.streamCellsIn;
        w.lastIn = now;
        for (const link of w.links) this.monitor.heard(link);
      }
      if (c.streamCellsOut !== w.streamOut) {
        w.streamOut = c.streamCellsOut;
        w.lastOut = now;
      }
      // Someone waits on this circuit: a stream opening, or cells sent and nothing back since, or a
      // relay of it judged silent (its episode is followed closely, whatever the idle pace).
      const waiting =
        c.openingCount > 0 ||
        (c.streamCount > 0 && w.lastOut > w.lastIn) ||
        w.pc.nodes.some((n) => RANK[this.#states.get(n) ?? "ok"] >= RANK.frozen);
      const pace = waiting ? busyPace : idlePace;
      for (const link of w.links) this.monitor.pace(link, pace);
    }
    this.monitor.tick();
    if (now - this.#standbysAt >= 250) {
      this.#standbysAt = now;
      pool.tendStandbys();
    }
    if (now - this.#knownAt >= 5_000 && this.#o.probeIntervalMs !== 0) {
      this.#knownAt = now;
      try {
        this.#known = new Map(this.#o.directory().map((r) => [nodeId(r), r]));
        this.monitor.setKnownNodes([...this.#known.keys()]);
      } catch (error) {
        this.#log.warn("directory not readable for latency probes", { error: (error as Error).message });
      }
    }
  }

  /**
   * Analyze: every hop of every circuit, in path order; the first hop not ok is the one judged
   * (the hops behind it are not beaconed meanwhile: their silence would say nothing). Relays are
   * judged against each other too: a spike or loss counts only when the relay stands out from the
   * rest measured now, and verdicts that make many relays silent at once are the entry's own stall
   * or its network, not theirs: then nobody is blamed until it passes.
   */
  #judge(now: number): void {
    const pool = this.#pool;
    if (!pool) return;
    const watched = [...this.#watched.values()];
    const { verdicts, seen, silentFrom, silentStall, silentBehind } = judgeCircuits(
      watched.map((w) => ({
        nodes: w.pc.nodes,
        observations: (hop) => this.monitor.observations(w.links[hop] as string),
        pausedFrom: w.paused.size === 0 ? w.links.length : Math.min(...w.paused),
      })),
      (node) => this.#statsOf(node, now),
      now,
      this.#analyze,
    );
    watched.forEach((w, i) => this.#pauseFrom(w, silentFrom[i] as number));
    if (silentStall && now - this.#stallLoggedAt > 10_000) {
      this.#stallLoggedAt = now;
      this.#log.warn("many relays silent at once: the entry or its network, no relay is blamed", {
        silent: [...verdicts.values()].filter((v) => RANK[v.state] >= RANK.frozen).length,
        judged: seen.size,
      });
    }
    const degradedCap = Math.max(1, Math.floor(Math.max(this.#known.size, seen.size) / 3));
    for (const node of seen) {
      const v = verdicts.get(node);
      const prev = this.#states.get(node) ?? "ok";
      if (RANK[prev] >= RANK.frozen && (!v || RANK[v.state] < RANK.frozen)) {
        // A silent relay's episode ends when it answers again (then what it missed while silent
        // is history: Knowledge has it, and its links start afresh, or the beacons lost in the
        // stall would read as loss for the next ten seconds).
        if (!this.#answeredSince(node, this.#since.get(node) ?? now)) continue;
        this.#endEpisode(node);
        if (prev === "frozen") pool.relax(node, RECOVERED_SUSPECT_MS);
        continue;
      }
      if (!v) {
        if (prev !== "ok") this.#endEpisode(node);
        continue;
      }
      if (RANK[v.state] <= RANK[prev]) continue;
      const silent = RANK[v.state] >= RANK.frozen;
      if (silent && (silentStall || now < this.#graceUntil) && RANK[prev] < RANK.frozen) continue;
      // Slow or lossy relays are moved away from only while few are suspected: when a third of
      // the network looks degraded, moving traffic around helps nobody (a busy machine, a bad uplink).
      if (!silent && pool.suspects().size >= degradedCap) continue;
      const behind = silent && RANK[prev] < RANK.frozen ? silentBehind.get(node) : undefined;
      if (behind && (this.#aliveUntil.get(node) ?? 0) > now) {
        // It answered a direct check a moment ago: only the circuits where it is silent behind
        // another hop are given up (their pending streams move), and the hop before is in question.
        const where = new Set(behind.map((b) => watched[b.circuit]?.pc.id));
        const views = pool.views().filter((c) => where.has(c.id) || c.role === "standby");
        this.executor.apply(
          decide(node, v, views).filter((d) => d.action !== "suspect"),
          { node, state: v.state, relay: pool.nameOf(node), why: "silent behind another hop, alive" },
        );
        for (const b of behind) this.#blame(b.pred, node, now, "relays behind it went silent while answering directly");
        continue;
      }
      // A hop that went silent is a failure in Knowledge once per episode (dead after frozen is the
      // same one); one silent only behind another hop is checked directly first (checkBehind).
      if (silent && RANK[prev] < RANK.frozen && !behind) this.knowledge.recordFailure(node, now, "frozen");
      if (!behind) this.#act(node, v);
      else {
        // Its circuits are given up at once; it is suspected for good only if the check fails.
        this.#act(node, v, (this.#o.probeTimeoutMs ?? 2_000) + 1_000);
        this.checkBehind(
          node,
          behind.map((b) => b.pred),
          "frozen",
          `${v.state}: ${v.reason}`,
        );
      }
    }
    for (const node of this.#states.keys()) if (!seen.has(node)) this.#endEpisode(node);
  }

  #endEpisode(node: string): void {
    const wasSilent = RANK[this.#states.get(node) ?? "ok"] >= RANK.frozen;
    this.#states.delete(node);
    this.#since.delete(node);
    if (!wasSilent) return;
    for (const w of this.#watched.values()) {
      const at = w.pc.nodes.indexOf(node);
      if (at < 0) continue;
      // The hops behind it saw its silence or its delay too: their history goes with its.
      for (let hop = at; hop < w.links.length; hop++)
        if (!w.paused.has(hop)) this.monitor.reset(w.links[hop] as string);
      this.#inStep(w);
    }
  }

  /** Beacons every hop of `w` at the next tick, so that they are in step again. */
  #inStep(w: Watched): void {
    for (const [hop, link] of w.links.entries()) if (!w.paused.has(hop)) this.monitor.beaconNow(link);
  }

  /** Whether any link to `node` saw an echo or traffic after `since`. */
  #answeredSince(node: string, since: number): boolean {
    for (const w of this.#watched.values())
      for (let hop = 0; hop < w.links.length; hop++) {
        if (w.pc.nodes[hop] !== node) continue;
        for (const o of this.monitor.observations(w.links[hop] as string))
          if ((o.kind === "echo" || o.kind === "heard") && o.at > since) return true;
      }
    return false;
  }

  /** Beacons hops from `from` on no more (a hop before them is silent), or again (it answers). */
  #pauseFrom(w: Watched, from: number): void {
    let resumed = false;
    for (let hop = 0; hop < w.links.length; hop++) {
      const link = w.links[hop] as string;
      if (hop >= from && !w.paused.has(hop)) {
        w.paused.add(hop);
        this.monitor.linkReleased(link);
      } else if (hop < from && w.paused.delete(hop)) {
        this.monitor.linkInUse(link, w.pc.nodes[hop] as string, this.#o.beaconIntervalMs ?? 500);
        resumed = true;
      }
    }
    // A resumed hop beacons at once; the hops before it must too, or its beacon alone would be
    // outstanding and its silence could not be told from theirs.
    if (resumed) this.#inStep(w);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

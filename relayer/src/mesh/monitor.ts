/**
 * The M of MAPE-K: the beacon schedule and what comes back. Every link in use gets a beacon every
 * `beaconIntervalMs` (500 ms; in-band, echoed by the hop); every known node not in use gets a
 * latency probe every `probeIntervalMs` (30 s), staggered by a hash of its name so that probes do
 * not all leave at once. Link closes and cell errors are observations too.
 *
 * Sockets are not here: sending is an injected effect, answers come back as method calls, and the
 * clock is injected, so the schedule is tested tick by tick. `observations(link)` feeds analyze.ts;
 * every answer (or a beacon given up on after `lostAfterMs`) goes to Knowledge.
 */
import { createHash } from "node:crypto";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { type HopObservation, keepRecent } from "./analyze.ts";
import { Counters } from "./counters.ts";
import type { FailureKind, ProbeOutcome } from "./knowledge.ts";

export interface MonitorEffects {
  /** Sends beacon `seq` on `link` (phase 2: an in-band echo cell to the hop). */
  sendBeacon(link: string, seq: number): void;
  /** Sends latency probe `seq` to `node`, which is not in use (phase 2: connect + handshake timing). */
  sendProbe(node: string, seq: number): void;
}

/** Where measurements go (a Knowledge, or anything with the same two methods). */
export interface KnowledgeSink {
  recordProbe(node: string, outcome: ProbeOutcome): void;
  recordFailure(node: string, at: number, kind: FailureKind): void;
}

export interface MonitorOptions {
  effects: MonitorEffects;
  now: () => number;
  knowledge?: KnowledgeSink;
  /** The reward epoch of a time (uptime attestations count probes per epoch). */
  epochOf?: (ms: number) => bigint;
  beaconIntervalMs?: number;
  probeIntervalMs?: number;
  /** A beacon or probe unanswered this long counts as lost (default 5 s). */
  lostAfterMs?: number;
  /** Observations kept per link (default 64). */
  maxObservations?: number;
  /** Most outstanding beacons or probes per link or node (default 32). */
  maxOutstanding?: number;
  counters?: Counters;
  logger?: Logger;
}

interface LinkState {
  node: string;
  nextBeacon: number;
  seq: number;
  pending: Map<number, number>;
  observations: HopObservation[];
}

interface ProbeState {
  nextProbe: number;
  seq: number;
  pending: Map<number, number>;
}

/** A stable offset in [0, period) for `name`, so each node's probes keep their own phase. */
export function phaseOf(name: string, period: number): number {
  return createHash("sha256").update(name).digest().readUInt32BE(0) % Math.max(1, Math.floor(period));
}

export class Monitor {
  readonly counters: Counters;
  readonly #o: Required<Omit<MonitorOptions, "knowledge" | "epochOf" | "counters" | "logger">>;
  readonly #knowledge: KnowledgeSink | undefined;
  readonly #epochOf: ((ms: number) => bigint) | undefined;
  readonly #log: Logger;
  readonly #links = new Map<string, LinkState>();
  readonly #known = new Map<string, ProbeState>();

  constructor(options: MonitorOptions) {
    this.#o = {
      effects: options.effects,
      now: options.now,
      beaconIntervalMs: options.beaconIntervalMs ?? 500,
      probeIntervalMs: options.probeIntervalMs ?? 30_000,
      lostAfterMs: options.lostAfterMs ?? 5_000,
      maxObservations: options.maxObservations ?? 64,
      maxOutstanding: options.maxOutstanding ?? 32,
    };
    this.#knowledge = options.knowledge;
    this.#epochOf = options.epochOf;
    this.counters = options.counters ?? new Counters();
    this.#log = options.logger ?? silentLogger;
  }

  /** `link` (to `node`) carries circuits: beacon it from now on (the first beacon goes at once). */
  linkInUse(link: string, node: string): void {
    if (this.#links.has(link)) return;
    this.#links.set(link, { node, nextBeacon: this.#o.now(), seq: 0, pending: new Map(), observations: [] });
  }

  /** `link` carries nothing any more (or closed and was handled): stop beaconing it. */
  linkReleased(link: string): void {
    this.#links.delete(link);
  }

  /** The nodes the directory knows; those without a link in use get latency probes. */
  setKnownNodes(nodes: readonly string[]): void {
    const now = this.#o.now();
    const wanted = new Set(nodes);
    for (const name of this.#known.keys()) if (!wanted.has(name)) this.#known.delete(name);
    for (const name of wanted)
      if (!this.#known.has(name))
        this.#known.set(name, {
          nextProbe: now + phaseOf(name, this.#o.probeIntervalMs),
          seq: 0,
          pending: new Map(),
        });
  }

  #inUse(node: string): boolean {
    for (const l of this.#links.values()) if (l.node === node) return true;
    return false;
  }

  #record(node: string, at: number, rttMs: number | undefined): void {
    this.#knowledge?.recordProbe(node, { at, rttMs, ...(this.#epochOf ? { epoch: this.#epochOf(at) } : {}) });
  }

  /** Sends what is due at `now()` and gives up on what waited past `lostAfterMs`. */
  tick(): void {
    const now = this.#o.now();
    for (const [id, l] of this.#links) {
      for (const [seq, at] of l.pending)
        if (now - at > this.#o.lostAfterMs) {
          l.pending.delete(seq);
          this.#record(l.node, at, undefined);
          this.counters.inc("mesh_beacons_lost");
        }
      if (now < l.nextBeacon) continue;
      // Catch up without bursting: one beacon per tick, the schedule moves from now.
      l.nextBeacon = Math.max(l.nextBeacon + this.#o.beaconIntervalMs, now + 1);
      const seq = ++l.seq;
      if (l.pending.size >= this.#o.maxOutstanding) {
        const oldest = l.pending.keys().next().value as number;
        this.#record(l.node, l.pending.get(oldest) as number, undefined);
        l.pending.delete(oldest);
      }
      l.pending.set(seq, now);
      l.observations = keepRecent([...l.observations, { kind: "beacon", seq, at: now }], this.#o.maxObservations);
      this.counters.inc("mesh_beacons_sent");
      this.#o.effects.sendBeacon(id, seq);
    }
    for (const [node, p] of this.#known) {
      for (const [seq, at] of p.pending)
        if (now - at > this.#o.lostAfterMs) {
          p.pending.delete(seq);
          this.#record(node, at, undefined);
          this.counters.inc("mesh_probes_lost");
        }
      if (now < p.nextProbe) continue;
      p.nextProbe = now + this.#o.probeIntervalMs;
      if (this.#inUse(node)) continue; // beacons measure it already
      const seq = ++p.seq;
      if (p.pending.size >= this.#o.maxOutstanding) p.pending.delete(p.pending.keys().next().value as number);
      p.pending.set(seq, now);
      this.counters.inc("mesh_probes_sent");
      this.#o.effects.sendProbe(node, seq);
    }
  }

  /** The hop on `link` echoed beacon `seq`. */
  echo(link: string, seq: number): void {
    const l = this.#links.get(link);
    const sent = l?.pending.get(seq);
    if (!l || sent === undefined) return; // late echo of a beacon given up on, or unknown link
    const now = this.#o.now();
    l.pending.delete(seq);
    l.observations = keepRecent([...l.observations, { kind: "echo", seq, at: now }], this.#o.maxObservations);
    this.#record(l.node, sent, now - sent);
  }

  /** `node` answered latency probe `seq`. */
  probeAnswered(node: string, seq: number): void {
    const p = this.#known.get(node);
    const sent = p?.pending.get(seq);
    if (!p || sent === undefined) return;
    p.pending.delete(seq);
    this.#record(node, sent, this.#o.now() - sent);
  }

  /** Latency probe `seq` to `node` failed at once (refused, reset): lost, and a failure. */
  probeFailed(node: string, seq: number): void {
    const p = this.#known.get(node);
    const sent = p?.pending.get(seq);
    if (!p || sent === undefined) return;
    p.pending.delete(seq);
    this.#record(node, sent, undefined);
    this.#knowledge?.recordFailure(node, this.#o.now(), "closed");
  }

  /** The socket of `link` closed (or a cell on it failed its checks). */
  closed(link: string, kind: "closed" | "cell-error" = "closed"): void {
    const l = this.#links.get(link);
    if (!l) return;
    const at = this.#o.now();
    l.observations = keepRecent([...l.observations, { kind, at }], this.#o.maxObservations);
    this.#knowledge?.recordFailure(l.node, at, kind);
    this.counters.inc("mesh_link_failures", { kind });
    this.#log.info("link failed", { link, node: l.node, kind });
  }

  observations(link: string): readonly HopObservation[] {
    return this.#links.get(link)?.observations ?? [];
  }

  links(): { link: string; node: string }[] {
    return [...this.#links].map(([link, l]) => ({ link, node: l.node }));
  }

  /** When `tick()` next has something to send (ms), for a timer that sleeps until then. */
  nextDue(): number {
    let next = Infinity;
    for (const l of this.#links.values()) next = Math.min(next, l.nextBeacon);
    for (const p of this.#known.values()) next = Math.min(next, p.nextProbe);
    return next;
  }
}

/** Drives `monitor.tick()` from real timers (every `everyMs`, default 50 ms); returns a stop function. */
export function runMonitor(monitor: Monitor, everyMs = 50): () => void {
  const timer = setInterval(() => monitor.tick(), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

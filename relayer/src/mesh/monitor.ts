/**
 * The M of MAPE-K: the beacon schedule and what comes back. Every link in use gets a beacon every
 * `beaconIntervalMs` (500 ms; in-band, echoed by the hop); every known node not in use gets a
 * latency probe every `probeIntervalMs` (30 s), staggered by a hash of its name so that probes do
 * not all leave at once. Link closes and cell errors are observations too.
 *
 * Traffic is a beacon too: a cell that came back from the hop (or from beyond it) proves it alive,
 * so a link that was `heard` within the last `quietMs` is not asked (a busy circuit costs no
 * beacons, and a beacon stuck behind a queue of data would only measure the queue); once it falls
 * quiet for `quietMs` it is asked at once. Each link has its own pace (`pace`): the entry beacons
 * idle paid circuits less often, because every beacon cell is paid for.
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
  /** A link heard from within this long is not asked (default half the beacon interval). */
  quietMs?: number;
  probeIntervalMs?: number;
  /**
   * A node first known gets its first latency probe within this (default the probe interval): an
   * entry that starts knowing nothing measures every relay within seconds, not half a minute.
   */
  firstProbeWithinMs?: number;
  /** A beacon or probe unanswered this long counts as lost (default 5 s). */
  lostAfterMs?: number;
  /** Observations kept per link (default 64). */
  maxObservations?: number;
  /** Most outstanding beacons or probes per link or node (default 32). */
  maxOutstanding?: number;
  /**
   * The part of a beacon's round trip that belongs to the link's node, for Knowledge (default: all
   * of it). A beacon to the third hop of a circuit crosses the first two as well: the entry
   * subtracts the round trip to the hop before.
   */
  rttOf?: (link: string, rttMs: number) => number;
  counters?: Counters;
  logger?: Logger;
}

interface LinkState {
  node: string;
  intervalMs: number;
  nextBeacon: number;
  /** When traffic from the hop last arrived (-Infinity: never). */
  lastHeard: number;
  /** The last echo's round trip, ms. */
  lastRttMs: number | undefined;
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
  readonly #o: Required<
    Omit<MonitorOptions, "knowledge" | "epochOf" | "counters" | "logger" | "rttOf" | "quietMs" | "firstProbeWithinMs">
  > & {
    quietMs: number;
    firstProbeWithinMs: number;
  };
  readonly #rttOf: ((link: string, rttMs: number) => number) | undefined;
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
      quietMs: options.quietMs ?? (options.beaconIntervalMs ?? 500) / 2,
      probeIntervalMs: options.probeIntervalMs ?? 30_000,
      firstProbeWithinMs: options.firstProbeWithinMs ?? options.probeIntervalMs ?? 30_000,
      lostAfterMs: options.lostAfterMs ?? 5_000,
      maxObservations: options.maxObservations ?? 64,
      maxOutstanding: options.maxOutstanding ?? 32,
    };
    this.#knowledge = options.knowledge;
    this.#epochOf = options.epochOf;
    this.#rttOf = options.rttOf;
    this.counters = options.counters ?? new Counters();
    this.#log = options.logger ?? silentLogger;
  }

  /**
   * `link` (to `node`) carries circuits: beacon it from now on, every `intervalMs` (default the
   * beacon interval); the first beacon goes at once.
   */
  linkInUse(link: string, node: string, intervalMs = this.#o.beaconIntervalMs): void {
    if (this.#links.has(link)) return;
    this.#links.set(link, {
      node,
      intervalMs,
      nextBeacon: this.#o.now(),
      lastHeard: -Infinity,
      lastRttMs: undefined,
      seq: 0,
      pending: new Map(),
      observations: [],
    });
  }

  /** Beacons `link` every `intervalMs` from now on; a sooner pace takes effect at once. */
  pace(link: string, intervalMs: number): void {
    const l = this.#links.get(link);
    if (!l || l.intervalMs === intervalMs) return;
    l.nextBeacon = Math.min(l.nextBeacon, l.nextBeacon - l.intervalMs + intervalMs);
    l.intervalMs = intervalMs;
  }

  /**
   * A cell from the hop on `link` (or from a hop beyond it) arrived: the hop is alive now. Beacons
   * sent before it no longer count as unanswered, and the link is not asked while it stays busy.
   */
  heard(link: string): void {
    const l = this.#links.get(link);
    if (!l) return;
    const at = this.#o.now();
    l.lastHeard = at;
    // Consecutive "heard" observations say no more than the last one: keep only that.
    const last = l.observations.at(-1);
    if (last?.kind === "heard") l.observations[l.observations.length - 1] = { kind: "heard", at };
    else l.observations = keepRecent([...l.observations, { kind: "heard", at }], this.#o.maxObservations);
  }

  /** Forgets what `link` saw (a stall that ended is history): beacons go on from now. */
  reset(link: string): void {
    const l = this.#links.get(link);
    if (!l) return;
    l.pending.clear();
    l.observations = [];
  }

  /**
   * The next beacon on `link` goes at the next tick. The hops of one circuit are beaconed together
   * (a hop's silence is told from the silence of the hops before it only if their beacons left
   * at the same time): after one of them was reset or resumed, the entry puts them back in step.
   */
  beaconNow(link: string): void {
    const l = this.#links.get(link);
    if (l) l.nextBeacon = Math.min(l.nextBeacon, this.#o.now());
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
          nextProbe: now + phaseOf(name, Math.min(this.#o.probeIntervalMs, this.#o.firstProbeWithinMs)),
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
      if (now < l.nextBeacon || now < l.lastHeard + this.#o.quietMs) continue;
      // Keep the phase when on time; after a pause (busy, or a late tick) start again from now.
      l.nextBeacon = l.nextBeacon + l.intervalMs > now ? l.nextBeacon + l.intervalMs : now + l.intervalMs;
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
    l.lastRttMs = now - sent;
    this.#record(l.node, sent, this.#rttOf ? Math.max(0, this.#rttOf(link, now - sent)) : now - sent);
  }

  /** The round trip of the last beacon `link` echoed, ms (undefined: none yet). */
  rtt(link: string): number | undefined {
    return this.#links.get(link)?.lastRttMs;
  }

  /**
   * `node` answered latency probe `seq`; `rttMs` overrides the time since it was sent (a probe
   * that takes two round trips, a TCP connect and a handshake, reports one).
   */
  probeAnswered(node: string, seq: number, rttMs?: number): void {
    const p = this.#known.get(node);
    const sent = p?.pending.get(seq);
    if (!p || sent === undefined) return;
    p.pending.delete(seq);
    this.#record(node, sent, rttMs ?? this.#o.now() - sent);
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
    for (const l of this.#links.values()) next = Math.min(next, Math.max(l.nextBeacon, l.lastHeard + this.#o.quietMs));
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

/**
 * The E of MAPE-K: what to do when Analyze judges a hop. `decide` is a pure function from a verdict
 * and the circuits that use the node to a list of decisions; `Executor` carries them out through
 * injected effects (the entry's circuit table in phase 2), logs each as one structured line and
 * counts it.
 *
 * Dead or frozen hop: the node is suspected (new paths avoid it); every circuit through it is
 * taken out of service: its isolation class moves new streams to its standby at once (or rebuilds
 * in the foreground if it has none), streams that had not connected yet are retried on the class's
 * new circuit (so the SOCKS client sees success), and a new standby is built in the background. A
 * frozen hop's circuits are retired (no new streams) but kept: a stall that ends (a pause, a busy
 * relay) costs the streams on them nothing. A dead hop's circuits, retired ones included, are
 * closed: their streams already carrying data end, because a TCP stream through a dead exit cannot
 * be moved. A frozen hop that stays silent becomes dead (analyze.ts: missed beacons in a row). A
 * hop with a latency spike or loss is suspected for less long and its circuits are retired (no new
 * streams; running ones finish) in favour of the standby or a rebuild.
 */
import type { LogFields, Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import type { HopVerdict } from "./analyze.ts";
import { Counters } from "./counters.ts";

export interface CircuitView {
  id: string;
  isolation: string;
  /** Node names, client side first. */
  path: readonly string[];
  /** A retired circuit takes no new streams; its running streams finish. */
  role: "active" | "standby" | "retired";
  /** Streams that asked to open and have no answer from the exit yet. */
  pendingStreams: readonly string[];
}

export type Decision =
  | { action: "suspect"; node: string; ms: number; why: string }
  | { action: "promote-standby"; isolation: string; circuit: string; replaces: string }
  | { action: "rebuild"; isolation: string; role: "active" | "standby"; avoid: readonly string[]; background: boolean }
  | { action: "retry-stream"; stream: string; isolation: string; from: string }
  | { action: "retire"; circuit: string; why: string }
  | { action: "close"; circuit: string; why: string };

export interface ExecuteEffects {
  suspect(node: string, ms: number, why: string): void;
  /** New streams of `isolation` go to `circuit` (its standby) from now on. */
  promoteStandby(isolation: string, circuit: string): void;
  /** Builds a circuit for `isolation` avoiding `avoid`; a foreground build is awaited by new streams. */
  rebuild(isolation: string, role: "active" | "standby", avoid: ReadonlySet<string>, background: boolean): void;
  /** Re-opens a not-yet-connected stream on its class's current circuit. */
  retryStream(stream: string, isolation: string): void;
  /** No new streams on `circuit`; it closes once its streams are done. */
  retire(circuit: string): void;
  /** Closes `circuit` now; its connected streams end towards the application. */
  close(circuit: string, why: string): void;
}

export interface DecideOptions {
  /** How long a dead or frozen node is avoided (default 10 min, the entry's suspectMs today). */
  deadSuspectMs?: number;
  /** How long a slow or lossy node is avoided (default 2 min). */
  degradedSuspectMs?: number;
}

/** The decisions for `node` judged `verdict`, given every circuit open now. Pure. */
export function decide(
  node: string,
  verdict: HopVerdict,
  circuits: readonly CircuitView[],
  options: DecideOptions = {},
): Decision[] {
  if (verdict.state === "ok") return [];
  const dead = verdict.state === "dead";
  const stalled = dead || verdict.state === "frozen";
  const out: Decision[] = [
    {
      action: "suspect",
      node,
      ms: stalled ? (options.deadSuspectMs ?? 600_000) : (options.degradedSuspectMs ?? 120_000),
      why: `${verdict.state}: ${verdict.reason}`,
    },
  ];
  const hit = circuits.filter((c) => c.path.includes(node));
  const classes = new Set(hit.map((c) => c.isolation));
  const why = `${node} ${verdict.state}`;
  for (const isolation of classes) {
    const mine = circuits.filter((c) => c.isolation === isolation);
    const through = (role: CircuitView["role"]) => hit.filter((c) => c.isolation === isolation && c.role === role);
    const active = through("active");
    const spare = mine.find((c) => c.role === "standby" && !c.path.includes(node));
    const avoid = new Set<string>([node]);
    for (const c of active) {
      if (spare) {
        out.push({ action: "promote-standby", isolation, circuit: spare.id, replaces: c.id });
        for (const n of spare.path) avoid.add(n);
      } else {
        out.push({ action: "rebuild", isolation, role: "active", avoid: [node], background: false });
      }
    }
    for (const c of [...active, ...through("retired")]) {
      if (stalled)
        for (const stream of c.pendingStreams) out.push({ action: "retry-stream", stream, isolation, from: c.id });
      if (dead) out.push({ action: "close", circuit: c.id, why });
      else if (c.role === "active") out.push({ action: "retire", circuit: c.id, why });
    }
    const brokenStandby = through("standby");
    for (const c of brokenStandby) out.push({ action: "close", circuit: c.id, why: `standby through ${node}` });
    // Whatever happened above, the class needs a standby that avoids the node and its new circuit.
    if (active.length > 0 || brokenStandby.length > 0)
      out.push({ action: "rebuild", isolation, role: "standby", avoid: [...avoid], background: true });
  }
  return out;
}

/** Carries out decisions through effects; one log line and one counter per decision. */
export class Executor {
  readonly counters: Counters;
  readonly #effects: ExecuteEffects;
  readonly #log: Logger;
  readonly #options: DecideOptions;

  constructor(effects: ExecuteEffects, options: DecideOptions & { counters?: Counters; logger?: Logger } = {}) {
    this.#effects = effects;
    this.counters = options.counters ?? new Counters();
    this.#log = options.logger ?? silentLogger;
    this.#options = options;
  }

  /** Decides for `node` and applies the decisions; returns them. */
  onVerdict(node: string, verdict: HopVerdict, circuits: readonly CircuitView[], context: LogFields = {}): Decision[] {
    const decisions = decide(node, verdict, circuits, this.#options);
    this.apply(decisions, { node, state: verdict.state, ...context });
    return decisions;
  }

  apply(decisions: readonly Decision[], context: LogFields = {}): void {
    for (const d of decisions) {
      this.counters.inc("mesh_decisions", { action: d.action });
      const { action, ...fields } = d;
      this.#log.info("mesh decision", {
        action,
        ...context,
        ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, Array.isArray(v) ? v.join(",") : v])),
      });
      switch (d.action) {
        case "suspect":
          this.#effects.suspect(d.node, d.ms, d.why);
          break;
        case "promote-standby":
          this.#effects.promoteStandby(d.isolation, d.circuit);
          break;
        case "rebuild":
          this.#effects.rebuild(d.isolation, d.role, new Set(d.avoid), d.background);
          break;
        case "retry-stream":
          this.#effects.retryStream(d.stream, d.isolation);
          break;
        case "retire":
          this.#effects.retire(d.circuit);
          break;
        case "close":
          this.#effects.close(d.circuit, d.why);
          break;
      }
    }
  }
}

/**
 * The entry's circuits: per isolation class (the SOCKS username and password) one active circuit
 * that takes new streams and, while the class is active, one pre-built standby through other
 * relays that takes over at once when the active one fails (mesh/plan.ts `planStandbys`). Paths
 * come from node/route.ts: planPath over the directory, weighted by what the mesh knows of each
 * relay (latency, health, its latest verdict) and kept diverse (region, network prefix, operator).
 *
 * The pool carries out what the mesh decides (promote a standby, rebuild, retire, close, suspect a
 * relay) and builds circuits; it does not judge relays itself, except that a build that fails at a
 * hop suspects that hop. Streams are not here: entry.ts opens them on `circuitFor(isolation)` and
 * registers each open in flight on its circuit (`pending`) so that the mesh can move it.
 */
import { CircuitError, ClientCircuit } from "../circuit/client.ts";
import { CircuitMux } from "../circuit/mux.ts";
import { Link } from "../link/link.ts";
import type { LogFields, Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import type { PayerChannels } from "../accounting/payer.ts";
import type { NodeMetrics } from "../metrics/index.ts";
import type { CircuitView } from "../mesh/execute.ts";
import { type DiversityRules, planStandbys } from "../mesh/plan.ts";
import { StreamOpenError, StreamReason } from "../wire/reasons.ts";
import type { DirectoryEntry } from "./directory.ts";
import { chooseRoute, type NodeInfo, nodeId } from "./route.ts";

export { isLoopback, type NodeInfo, nodeId } from "./route.ts";

/** How long a relay a build failed at (past the first hop) is avoided while the mesh checks it directly. */
const BUILD_CHECK_MS = 5_000;

export interface PooledCircuit {
  /** "c1", "c2", … (decisions and logs name circuits by it). */
  readonly id: string;
  readonly circuit: ClientCircuit;
  readonly isolation: string;
  role: "active" | "standby";
  readonly path: readonly DirectoryEntry[];
  /** Node ids of the path, client side first. */
  readonly nodes: readonly string[];
  /** Stream opens in flight on this circuit: stream key → move it to the class's current circuit. */
  readonly pending: Map<string, () => void>;
}

export interface CircuitPoolOptions {
  directory: () => DirectoryEntry[];
  hops: number;
  maxCircuitAgeMs: number;
  buildStepTimeoutMs: number;
  /** Default suspicion for a relay a build failed at. */
  suspectMs: number;
  /**
   * Diversity rules for paths (mesh/plan.ts). `prefix` left undefined means: on, unless every relay
   * of the directory is on loopback (a network on one host, where it could never be met).
   */
  diversity?: Partial<DiversityRules>;
  /** Keep one standby circuit per active isolation class (default true). */
  standbys?: boolean;
  /** A class is active while it opened a stream within this (default 10 min). */
  classActiveMs?: number;
  nodeInfo?: (id: string) => NodeInfo;
  payer?: PayerChannels;
  metrics?: NodeMetrics;
  logger?: Logger;
  /** Decisions the pool takes by itself (a promotion, a standby built or dropped): log line and counter. */
  onDecision?: (action: string, fields: LogFields) => void;
  onBuilt?: (pc: PooledCircuit) => void;
  /**
   * A build failed at this node's hop; `before` is the relay that was asked to extend to it (hop
   * > 0), which may be the one at fault: the mesh checks `id` directly before it blames it.
   */
  onBuildFailed?: (id: string, before?: string) => void;
  onClosed?: (pc: PooledCircuit, error: CircuitError) => void;
}

interface Slot {
  promise: Promise<PooledCircuit>;
  built?: PooledCircuit;
}

interface ClassState {
  isolation: string;
  lastUsed: number;
  active?: Slot;
  standby?: Slot;
  /** No standby is tried before this (after a failed plan or build), ms. */
  standbyRetryAt: number;
  standbyFailures: number;
}

export class CircuitPool {
  readonly #o: CircuitPoolOptions;
  readonly #log: Logger;
  readonly #classes = new Map<string, ClassState>();
  readonly #open = new Map<string, PooledCircuit>();
  /** Node id → Date.now() until which new paths avoid it (bounded by the directory's size). */
  readonly #suspects = new Map<string, number>();
  readonly #muxes = new Map<string, Promise<CircuitMux>>();
  /** Node id → name, from the latest directory read (logs). */
  readonly #names = new Map<string, string>();
  #serial = 0;
  #closing = false;
  #prefixAutoLogged = false;

  constructor(options: CircuitPoolOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
  }

  /** A relay's display name (its descriptor's name), or the start of its id. */
  nameOf(id: string): string {
    return this.#names.get(id) ?? id.slice(0, 12);
  }

  get closing(): boolean {
    return this.#closing;
  }

  circuits(): PooledCircuit[] {
    return [...this.#open.values()];
  }

  byId(id: string): PooledCircuit | undefined {
    return this.#open.get(id);
  }

  /** Every open circuit as the executor sees it. */
  views(): CircuitView[] {
    return this.circuits().map((pc) => ({
      id: pc.id,
      isolation: pc.isolation,
      path: pc.nodes,
      role: pc.circuit.retired ? "retired" : pc.role,
      pendingStreams: [...pc.pending.keys()],
    }));
  }

  /** Relays suspected now (forgets expired suspicions). */
  suspects(): Set<string> {
    const now = Date.now();
    const out = new Set<string>();
    for (const [id, until] of this.#suspects) {
      if (until <= now) this.#suspects.delete(id);
      else out.add(id);
    }
    return out;
  }

  suspect(id: string, ms: number, why: string): void {
    this.#suspects.set(id, Math.max(this.#suspects.get(id) ?? 0, Date.now() + ms));
    this.#o.metrics?.failover(why.startsWith("circuit build") ? "build_failed" : "probe_silent");
    this.#log.warn("relay suspected: new circuits avoid it", { relay: this.nameOf(id), node: id, why, ms });
  }

  /** Shortens a suspicion to at most `ms` from now (a relay whose stall passed). */
  relax(id: string, ms: number): void {
    const until = this.#suspects.get(id);
    if (until !== undefined && until > Date.now() + ms) this.#suspects.set(id, Date.now() + ms);
  }

  #class(isolation: string): ClassState {
    let cls = this.#classes.get(isolation);
    if (!cls) {
      cls = { isolation, lastUsed: Date.now(), standbyRetryAt: 0, standbyFailures: 0 };
      this.#classes.set(isolation, cls);
    }
    return cls;
  }

  /** Takes new streams: open, not retired, not too old. (Not a type guard: false does not mean undefined.) */
  #usable(pc: PooledCircuit | undefined): boolean {
    return (
      pc !== undefined &&
      !pc.circuit.closed &&
      !pc.circuit.retired &&
      Date.now() - pc.circuit.createdAt < this.#o.maxCircuitAgeMs
    );
  }

  /** The circuit new streams of `isolation` go to: the active one, the standby, or a fresh build. */
  async circuitFor(isolation: string): Promise<PooledCircuit> {
    const cls = this.#class(isolation);
    cls.lastUsed = Date.now();
    const slot = cls.active;
    if (slot) {
      const pc = slot.built ?? (await slot.promise.catch(() => undefined));
      if (pc && this.#usable(pc)) return pc;
      if (cls.active === slot) {
        cls.active = undefined;
        // Too old for new streams: it closes once its streams are done (the sweeper).
        if (pc && !pc.circuit.closed && !pc.circuit.retired) {
          pc.circuit.retire();
          this.#o.onDecision?.("retire", { circuit: pc.id, why: "too old or closed for new streams" });
        }
      }
    }
    if (!cls.active) {
      const spare = cls.standby?.built;
      if (spare && this.#usable(spare)) {
        this.#promote(cls, "the active circuit is gone");
        return spare;
      }
      cls.active = this.#slot(cls, "active", new Set(), 3);
    }
    return cls.active.promise;
  }

  #promote(cls: ClassState, why: string): void {
    const standby = cls.standby;
    if (!standby?.built) return;
    const replaces = cls.active?.built?.id;
    cls.active = standby;
    cls.standby = undefined;
    standby.built.role = "active";
    this.#o.onDecision?.("promote-standby", {
      isolation: cls.isolation,
      circuit: standby.built.id,
      replaces,
      why,
    });
  }

  /** New streams of `isolation` go to its standby `circuit` from now on (a mesh decision). */
  promote(isolation: string, circuit: string): void {
    const cls = this.#classes.get(isolation);
    if (!cls || cls.standby?.built?.id !== circuit || !this.#usable(cls.standby.built)) return;
    const standby = cls.standby;
    cls.active = standby;
    cls.standby = undefined;
    (standby.built as PooledCircuit).role = "active";
  }

  /** Builds a circuit for `isolation` avoiding `avoid` (a mesh decision). */
  rebuild(isolation: string, role: "active" | "standby", avoid: ReadonlySet<string>): void {
    const cls = this.#class(isolation);
    if (role === "active") {
      cls.active = this.#slot(cls, "active", new Set(avoid), 3);
      return;
    }
    const held = cls.standby?.built;
    if (cls.standby && !held) return; // being built
    if (held && this.#usable(held) && !held.nodes.some((n) => avoid.has(n))) return;
    held?.circuit.close();
    cls.standby = undefined;
    if (this.#o.standbys === false || Date.now() < cls.standbyRetryAt) return;
    const activeNodes = cls.active?.built?.nodes ?? [];
    cls.standby = this.#slot(cls, "standby", new Set([...avoid, ...activeNodes]), 1);
  }

  retire(circuit: string): void {
    const pc = this.#open.get(circuit);
    if (!pc) return;
    pc.circuit.retire();
    const cls = this.#classes.get(pc.isolation);
    if (cls?.active?.built === pc) cls.active = undefined;
  }

  closeCircuit(circuit: string): void {
    this.#open.get(circuit)?.circuit.close();
  }

  /**
   * One standby per active class (planStandbys): builds the missing ones and drops those of idle
   * classes or that share a relay with their class's active circuit or a suspect. Failed standby
   * builds back off (1 s doubling to 60 s), so a directory too small for disjoint paths costs
   * one attempt a minute.
   */
  tendStandbys(): void {
    if (this.#o.standbys === false || this.#closing) return;
    const now = Date.now();
    const states = [];
    for (const cls of this.#classes.values()) {
      const active = cls.active?.built;
      if (!active || !this.#usable(active)) continue; // nothing to stand by for yet
      if (cls.standby && !cls.standby.built) continue; // one is being built
      const standby = cls.standby?.built;
      states.push({
        isolation: cls.isolation,
        lastUsed: cls.lastUsed,
        active: active.nodes,
        ...(standby ? { standby: { path: standby.nodes, ready: true } } : {}),
      });
    }
    for (const action of planStandbys(states, now, {
      activeMs: this.#o.classActiveMs,
      suspects: this.suspects(),
    })) {
      const cls = this.#classes.get(action.isolation) as ClassState;
      if (action.kind === "drop-standby") {
        const pc = cls.standby?.built;
        cls.standby = undefined;
        if (pc) {
          this.#o.onDecision?.("close", { circuit: pc.id, why: `standby dropped: ${action.why}` });
          pc.circuit.close();
        }
      } else if (now >= cls.standbyRetryAt) {
        this.#o.onDecision?.("rebuild", {
          isolation: cls.isolation,
          role: "standby",
          background: true,
          avoid: [...action.avoid].map((id) => this.nameOf(id)).join(","),
        });
        cls.standby = this.#slot(cls, "standby", new Set(action.avoid), 1);
      }
    }
    // Classes idle for long, with nothing left, are forgotten.
    for (const [key, cls] of this.#classes)
      if (!cls.active && !cls.standby && now - cls.lastUsed > 2 * (this.#o.classActiveMs ?? 600_000))
        this.#classes.delete(key);
  }

  /** A build (with `attempts` tries) whose result becomes `cls`'s `role` circuit if still wanted. */
  #slot(cls: ClassState, role: "active" | "standby", avoid: Set<string>, attempts: number): Slot {
    const slot: Slot = {
      promise: (async () => {
        let lastError: unknown;
        for (let attempt = 0; attempt < attempts; attempt++) {
          try {
            return await this.#build(cls.isolation, role, avoid);
          } catch (error) {
            lastError = error;
            if (role === "active") this.#log.warn("circuit build failed", { attempt, error: (error as Error).message });
          }
        }
        throw new StreamOpenError(
          StreamReason.networkUnreachable,
          `could not build a circuit: ${(lastError as Error).message}`,
          { cause: lastError },
        );
      })(),
    };
    slot.promise.then(
      (pc) => {
        slot.built = pc;
        if (role === "standby") cls.standbyFailures = 0;
        // Not wanted any more (replaced while it was being built): a standby is closed; an active
        // circuit still serves the streams that awaited it and is retired.
        if (cls.active !== slot && cls.standby !== slot) {
          if (role === "standby" || this.#closing) pc.circuit.close();
          else pc.circuit.retire();
        }
      },
      (error: Error) => {
        if (cls[role] === slot) cls[role] = undefined;
        if (role === "standby") {
          cls.standbyFailures++;
          const ms = Math.min(60_000, 1_000 * 2 ** (cls.standbyFailures - 1));
          cls.standbyRetryAt = Date.now() + ms;
          this.#log.info("standby circuit not built", { isolation: cls.isolation, error: error.message, retryMs: ms });
        }
      },
    );
    return slot;
  }

  #muxTo(relay: DirectoryEntry): Promise<CircuitMux> {
    const key = nodeId(relay);
    let mux = this.#muxes.get(key);
    if (!mux) {
      mux = Link.connect(relay.host, relay.port, relay.keys).then(
        (link) => new CircuitMux(link, () => this.#muxes.delete(key)),
      );
      mux.catch(() => this.#muxes.delete(key));
      this.#muxes.set(key, mux);
    }
    return mux;
  }

  async #build(isolation: string, role: "active" | "standby", avoid: ReadonlySet<string>): Promise<PooledCircuit> {
    if (this.#closing) throw new StreamOpenError(StreamReason.generalFailure, "the entry is closing");
    const relays = this.#o.directory();
    for (const r of relays) this.#names.set(nodeId(r), r.name);
    const path = chooseRoute(relays, {
      hops: this.#o.hops,
      role,
      avoid,
      suspects: this.suspects(),
      diversity: this.#o.diversity,
      nodeInfo: this.#o.nodeInfo,
      onPrefixOff: () => {
        if (this.#prefixAutoLogged) return;
        this.#prefixAutoLogged = true;
        this.#log.info("every relay is on loopback: the network prefix rule is off (set diversity.prefix to decide)");
      },
    });
    const started = performance.now();
    const timed = this.#o.metrics?.timeCircuitBuild();
    let circuit: ClientCircuit;
    try {
      const mux = await this.#muxTo(path[0] as DirectoryEntry);
      circuit = await ClientCircuit.build(mux, path, {
        stepTimeoutMs: this.#o.buildStepTimeoutMs,
        payer: this.#o.payer ? { channels: this.#o.payer, operators: path.map((r) => r.operator) } : undefined,
      });
    } catch (error) {
      // The hop that did not answer or could not be reached (a link to hop 1 that failed: hop 0).
      this.#o.metrics?.error("circuit_build");
      const hop = error instanceof CircuitError ? error.hop : 0;
      const relay = hop === undefined ? undefined : path[hop];
      // A hop that would not extend to the next one (it does not know it: EXTEND_FAILED "not
      // allowed") says nothing about that relay's health: it is left out for a moment only.
      const refused = error instanceof CircuitError && error.extendReason === StreamReason.notAllowed;
      if (relay) {
        // Past the first hop the relay before it may have dropped the EXTEND: with a mesh to check
        // the relay directly, it is avoided only for the check's time until then.
        const before = hop ? path[hop - 1] : undefined;
        const checked = !refused && before !== undefined && this.#o.onBuildFailed !== undefined;
        if (!refused) this.#o.onBuildFailed?.(nodeId(relay), before && nodeId(before));
        this.#o.onDecision?.("suspect", { relay: relay.name, why: `circuit build: ${(error as Error).message}` });
        this.suspect(
          nodeId(relay),
          refused ? 30_000 : checked ? BUILD_CHECK_MS : this.#o.suspectMs,
          `circuit build: ${(error as Error).message}${checked ? " (provisional: checked directly)" : ""}`,
        );
      }
      throw error;
    }
    timed?.(path.length);
    const pc: PooledCircuit = {
      id: `c${++this.#serial}`,
      circuit,
      isolation,
      role,
      path,
      nodes: path.map(nodeId),
      pending: new Map(),
    };
    this.#open.set(pc.id, pc);
    circuit.onClose((error) => {
      this.#open.delete(pc.id);
      this.#o.onClosed?.(pc, error);
    });
    if (this.#closing) circuit.close();
    else this.#o.onBuilt?.(pc);
    this.#log.info("circuit built", {
      circuit: pc.id,
      role,
      hops: path.length,
      ms: Math.round(performance.now() - started),
      path: path.map((r) => r.name).join(">"),
    });
    return pc;
  }

  /** Closes every circuit and link. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const pc of [...this.#open.values()]) pc.circuit.close();
    for (const m of this.#muxes.values())
      await m.then(
        (x) => x.link.close(),
        () => {},
      );
  }
}

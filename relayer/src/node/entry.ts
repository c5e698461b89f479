/**
 * The local node a user's apps talk to: a SOCKS5 entry on 127.0.0.1:10809 whose streams leave
 * through circuits of relays. Circuits are built ahead of time and shared by streams with the same
 * isolation key (the SOCKS5 username and password, Tor's IsolateSOCKSAuth); each active class keeps
 * a standby circuit through other relays (node/circuit-pool.ts). The mesh loop (node/entry-mesh.ts)
 * beacons every hop of every circuit, and when a relay dies, freezes or degrades moves new streams
 * to the standby at once and rebuilds in the background. A stream whose circuit dies or stalls
 * before the exit answered is opened again on the class's current circuit, so the application
 * sees success; a stream already carrying data ends with its circuit (docs/self-healing.md).
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { ClientCircuit } from "../circuit/client.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { Counters } from "../mesh/counters.ts";
import { Knowledge } from "../mesh/knowledge.ts";
import type { DiversityRules } from "../mesh/plan.ts";
import { startSocksServer } from "../socks/index.ts";
import type { OpenStream, SocksServer } from "../socks/index.ts";
import type { Target } from "../wire/cell.ts";
import { StreamOpenError, StreamReason } from "../wire/reasons.ts";
import type { DirectoryEntry } from "./directory.ts";
import type { PayerChannels } from "../accounting/payer.ts";
import type { NodeMetrics } from "../metrics/index.ts";
import { DestroyReason } from "../wire/cell.ts";
import { CircuitPool, type PooledCircuit } from "./circuit-pool.ts";
import { EntryMesh } from "./entry-mesh.ts";

export interface EntryOptions {
  socksHost?: string;
  socksPort?: number;
  /** Relays to build circuits through (read at every build: a folder, or a descriptor store). */
  directory: () => DirectoryEntry[];
  /** Hops per circuit, 1..5 (default 3). */
  hops?: number;
  /** Retire a circuit for new streams after this long (default 10 min). */
  maxCircuitAgeMs?: number;
  /**
   * A stream open with no answer from the exit within this (default 5 s) retires its circuit for
   * new streams at once and probes its hops: a silent hop (a frozen relay) is avoided by the
   * rebuild, its circuit is closed and the stream retried on the new one. The mesh's beacons
   * normally find a frozen relay long before; this is the fallback.
   */
  streamOpenTimeoutMs?: number;
  /** Every hop must answer a probe within this (default 2 s). */
  probeTimeoutMs?: number;
  /** Each hop of a build must answer within this (default 5 s). */
  buildStepTimeoutMs?: number;
  /** A relay a build failed at is left out of new paths for this long (default 10 min). */
  suspectMs?: number;
  socksAuth?: { verify(username: string, password: string): boolean };
  /**
   * Pay every hop that names an operator in-band with this client key (docs/settlement.md). A relay
   * that stops serving the payer is avoided by new paths; once two different relays have stopped
   * it, new SOCKS requests fail at once with REP 0x02 ("not allowed") for `paymentBackoffMs`
   * (default 10 s), then circuits are tried again (after a top-up).
   */
  payer?: PayerChannels;
  paymentBackoffMs?: number;
  /**
   * What the mesh measured of every relay (mesh/knowledge.ts): a SQLite file that outlives
   * restarts, an open Knowledge, or (default) one in memory.
   */
  knowledge?: string | Knowledge;
  /**
   * Path diversity (mesh/plan.ts): no two hops in one region, network prefix (IPv4 /16, IPv6 /32)
   * or operator. A network on one host turns `prefix` off; left undefined, it is off only when
   * every relay of the directory is on loopback.
   */
  diversity?: Partial<DiversityRules>;
  /** One standby circuit per active isolation class (default true). */
  standbys?: boolean;
  /** Beacons on each hop of a circuit someone waits on: a stream opening or an answer due (default 500 ms). */
  beaconIntervalMs?: number;
  /**
   * Beacons on a circuit without stream traffic, standbys included (default: 500 ms; 30 s when
   * paying, because every beacon cell is paid for: docs/self-healing.md, "What beacons cost").
   */
  idleBeaconIntervalMs?: number;
  /** Latency probes (a link handshake) to relays not in use (default 30 s; 0: none). */
  latencyProbeIntervalMs?: number;
  /** Prometheus metrics (relayer/src/metrics): circuit builds, failovers, streams, errors, mesh. */
  metrics?: NodeMetrics;
  logger?: Logger;
}

export interface EntryNode {
  readonly socks: SocksServer;
  /** Opens a stream as the SOCKS server does (for tests and the CLI). */
  readonly openStream: (
    target: Target,
    isolation?: string,
    signal?: AbortSignal,
    early?: Buffer,
  ) => Promise<import("node:stream").Duplex>;
  /** Circuits currently open (active, standby and retired ones). */
  readonly circuits: () => ClientCircuit[];
  /** The circuit table and the mesh loop (tests, the chaos harness, metrics). */
  readonly pool: CircuitPool;
  readonly mesh: EntryMesh;
  close(): Promise<void>;
}

/**
 * The isolation key of a SOCKS request: username and password together (Tor's IsolateSOCKSAuth),
 * length-prefixed so that no two different pairs can give the same key. No credentials: "".
 */
export function isolationKey(username: string | undefined, password: string | undefined): string {
  if (username === undefined && password === undefined) return "";
  const u = username ?? "";
  return `${u.length}:${u}${password ?? ""}`;
}

/** Attempts per stream open: the first circuit, then up to two others (a dead or stalled circuit). */
const STREAM_ATTEMPTS = 3;

function openKnowledge(value: EntryOptions["knowledge"]): { knowledge: Knowledge; owned: boolean } {
  if (value instanceof Knowledge) return { knowledge: value, owned: false };
  const path = value ?? ":memory:";
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  return { knowledge: new Knowledge(path), owned: true };
}

export async function startEntry(options: EntryOptions): Promise<EntryNode> {
  const log = options.logger ?? silentLogger;
  const hops = options.hops ?? 3;
  if (!Number.isInteger(hops) || hops < 1 || hops > 5) throw new RangeError(`hops: expected 1..5, got ${hops}`);
  const maxAge = options.maxCircuitAgeMs ?? 10 * 60_000;
  const streamOpenTimeoutMs = options.streamOpenTimeoutMs ?? 5_000;
  const probeTimeoutMs = options.probeTimeoutMs ?? 2_000;
  const suspectMs = options.suspectMs ?? 10 * 60_000;
  const paymentBackoffMs = options.paymentBackoffMs ?? 10_000;
  /** Why and until when new streams are refused after a hop stopped serving this payer. */
  let paymentStop: { message: string; until: number } | undefined;
  /** When relays stopped this payer within the back-off (at most a few: older ones are dropped). */
  const paymentStops: { at: number; relay: string }[] = [];

  const { knowledge, owned } = openKnowledge(options.knowledge);
  const counters = new Counters(options.metrics ? (n, l, by) => options.metrics?.mesh(n, l, by) : undefined);
  const beaconIntervalMs = options.beaconIntervalMs ?? 500;
  const mesh = new EntryMesh({
    knowledge,
    directory: options.directory,
    beaconIntervalMs,
    idleBeaconIntervalMs: options.idleBeaconIntervalMs ?? (options.payer ? 30_000 : beaconIntervalMs),
    probeIntervalMs: options.latencyProbeIntervalMs,
    probeTimeoutMs,
    counters,
    logger: log,
  });

  /**
   * A relay stopped serving this payer (PAY_STOP): avoid it, and once two different relays did
   * within the back-off, refuse new streams for a while (the credit is likely gone). One relay
   * alone cannot shut the payer out: it is only avoided. An unpaid entry has nothing to stop.
   */
  const onPaymentStop = (pc: PooledCircuit, message: string, hop: number | undefined) => {
    if (!options.payer) return;
    const relay = hop === undefined ? undefined : pc.nodes[hop];
    if (relay === undefined) {
      // A bare DESTROY with the payment reason, no PAY_STOP naming a hop: any relay on the path
      // can send one, so it counts for nothing (else one relay could pass for two and shut the
      // payer out).
      log.warn("a circuit was destroyed for payment without a stop naming a hop: ignored", { error: message });
      return;
    }
    const now = Date.now();
    while (paymentStops.length > 0 && now - paymentStops[0]!.at > paymentBackoffMs) paymentStops.shift();
    paymentStops.push({ at: now, relay });
    if (paymentStops.length > 16) paymentStops.shift();
    pool.suspect(relay, suspectMs, message);
    if (new Set(paymentStops.map((s) => s.relay)).size >= 2) {
      paymentStop = { message, until: now + paymentBackoffMs };
      log.error("relays stopped serving this payer: new streams are refused for a while", {
        error: message,
        ms: paymentBackoffMs,
      });
    } else
      log.warn("a relay stopped serving this payer: new paths avoid it", {
        relay: pool.nameOf(relay),
        error: message,
      });
  };

  const pool: CircuitPool = new CircuitPool({
    directory: options.directory,
    hops,
    maxCircuitAgeMs: maxAge,
    buildStepTimeoutMs: options.buildStepTimeoutMs ?? 5_000,
    suspectMs,
    diversity: options.diversity,
    standbys: options.standbys,
    nodeInfo: (id) => mesh.nodeInfo(id),
    payer: options.payer,
    metrics: options.metrics,
    logger: log,
    onDecision: (action, fields) => mesh.decision(action, fields),
    onBuilt: (pc) => mesh.watch(pc),
    onBuildFailed: (id, before) => mesh.buildFailed(id, before),
    onClosed: (pc, error) => {
      mesh.closed(pc, error);
      if (pool.closing) return;
      if (error.reason === DestroyReason.payment) onPaymentStop(pc, error.message, error.hop);
      else if (error.reason !== DestroyReason.requested)
        log.info("circuit closed", { circuit: pc.id, reason: error.reason, error: error.message });
      if (error.reason !== DestroyReason.requested) options.metrics?.failover("circuit_closed");
    },
  });
  mesh.bind(pool);

  /**
   * Opens a stream on `pc`; past `streamOpenTimeoutMs` without an answer the circuit takes no new
   * streams, and if a probe finds a silent hop, that relay is suspected and the circuit closed
   * (which fails this open, so the caller retries on a fresh circuit that avoids the relay).
   */
  const openOn = async (pc: PooledCircuit, target: Target, signal: AbortSignal, early?: Buffer) => {
    const circuit = pc.circuit;
    const timer = setTimeout(() => {
      if (circuit.closed) return;
      circuit.retire();
      mesh.decision("retire", { circuit: pc.id, why: `stream open timed out after ${streamOpenTimeoutMs} ms` });
      log.warn("stream open timed out: circuit retired, probing its hops", { circuit: pc.id, ms: streamOpenTimeoutMs });
      void circuit.probe(probeTimeoutMs).then((silent) => {
        if (circuit.closed) return;
        if (silent < 0) {
          // Every hop answered: the target is slow, not a relay. The circuit is fine for new streams.
          log.info("every hop answered the probe: circuit reinstated", { circuit: pc.id });
          return circuit.reinstate();
        }
        const node = pc.nodes[silent];
        // Past the first hop the relay before it may be dropping what it passes on: the mesh
        // checks the silent one directly before it is avoided for the full term.
        const before = silent > 0 ? pc.nodes[silent - 1] : undefined;
        if (node !== undefined && before !== undefined) {
          pool.suspect(node, 5_000, `hop ${silent + 1} did not answer a probe (provisional: checked directly)`);
          mesh.checkBehind(node, [before], "frozen", `hop ${silent + 1} did not answer a probe`);
        } else if (node !== undefined) pool.suspect(node, suspectMs, `hop ${silent + 1} did not answer a probe`);
        mesh.decision("suspect", { relay: pc.path[silent]?.name, why: `hop ${silent + 1} did not answer a probe` });
        mesh.decision("close", { circuit: pc.id, why: "a hop did not answer a probe" });
        circuit.close();
      });
    }, streamOpenTimeoutMs);
    try {
      return await circuit.openStream(target, signal, early);
    } finally {
      clearTimeout(timer);
    }
  };

  /** Fails at once while a payment stop holds (REP 0x02, "connection not allowed"). */
  const checkPayment = () => {
    if (paymentStop && Date.now() < paymentStop.until)
      throw new StreamOpenError(StreamReason.notAllowed, `payment: ${paymentStop.message}`);
  };
  let streamSerial = 0;
  /**
   * `early`: optimistic data sent right behind BEGIN on each attempt. Like Tor, an attempt whose
   * circuit dies after its exit connected but before CONNECTED came back may have delivered it
   * once already when the next attempt delivers it again.
   */
  const openStream = async (target: Target, isolation = "", signal?: AbortSignal, early?: Buffer) => {
    let lastError: unknown;
    for (let attempt = 0; attempt < STREAM_ATTEMPTS; attempt++) {
      checkPayment();
      if (attempt > 0) {
        options.metrics?.failover("stream_retry");
        log.info("stream not answered on its circuit: opening it on the class's current one", { attempt });
      }
      const pc = await pool.circuitFor(isolation);
      // The mesh may move an open in flight (its circuit stalled): it aborts this attempt.
      const move = new AbortController();
      const onAbort = () => move.abort();
      if (signal?.aborted) move.abort();
      signal?.addEventListener("abort", onAbort, { once: true });
      const key = `s${++streamSerial}`;
      pc.pending.set(key, () => move.abort());
      try {
        return await openOn(pc, target, move.signal, early);
      } catch (error) {
        lastError = error;
        // The exit's verdict (refused, unreachable, not allowed) is final; a dead or stalled
        // circuit is not, unless relays stopped serving this payer (checkPayment then refuses).
        if (signal?.aborted || !(move.signal.aborted || pc.circuit.closed)) throw error;
      } finally {
        pc.pending.delete(key);
        signal?.removeEventListener("abort", onAbort);
      }
    }
    throw lastError;
  };

  const socksOpen: OpenStream = async (request, signal) => {
    let stream;
    try {
      stream = await openStream(
        request.target,
        isolationKey(request.username, request.password),
        signal,
        request.early,
      );
    } catch (error) {
      options.metrics?.error("stream_open");
      throw error;
    }
    const metrics = options.metrics;
    if (metrics) {
      metrics.streamsOpened.inc();
      stream.once("close", () => metrics.streamsClosed.inc());
    }
    return { stream, earlyWritten: request.early?.length ?? 0 };
  };
  const socks = await startSocksServer({
    host: options.socksHost ?? "127.0.0.1",
    port: options.socksPort ?? 10809,
    openStream: socksOpen,
    auth: options.socksAuth,
    logger: log,
  });
  // Retired circuits (too old for new streams) close once their last stream is gone, so that
  // neither the entry nor the relays keep them forever. One pass over the open circuits.
  const sweeper = setInterval(
    () => {
      const now = Date.now();
      for (const { circuit: c } of pool.circuits())
        if (c.streamCount === 0 && (c.retired || now - c.createdAt >= maxAge)) c.close();
    },
    Math.max(50, Math.min(30_000, maxAge / 2)),
  );
  sweeper.unref();
  // Build the default circuit now, so that the first connection does not wait for it.
  pool.circuitFor("").catch((error: Error) => log.warn("first circuit not built yet", { error: error.message }));
  log.info("SOCKS5 entry listening", { host: socks.address.host, port: socks.address.port, hops });

  return {
    socks,
    openStream,
    circuits: () => pool.circuits().map((pc) => pc.circuit),
    pool,
    mesh,
    close: async () => {
      clearInterval(sweeper);
      mesh.close();
      await socks.close();
      await pool.close();
      if (owned) knowledge.close();
    },
  };
}

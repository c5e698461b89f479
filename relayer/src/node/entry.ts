/**
 * The local node a user's apps talk to: a SOCKS5 entry on 127.0.0.1:10809 whose streams leave
 * through circuits of relays. Circuits are built ahead of time, shared by streams with the same
 * isolation key (the SOCKS5 username and password, Tor's IsolateSOCKSAuth), retired after `maxCircuitAgeMs`,
 * and replaced when one dies: a stream that could not open because its circuit died is retried
 * once on a fresh circuit through other relays.
 */
import { randomInt } from "node:crypto";
import { CircuitError, ClientCircuit } from "../circuit/client.ts";
import { CircuitMux } from "../circuit/mux.ts";
import { Link } from "../link/link.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { startSocksServer } from "../socks/index.ts";
import type { OpenStream, SocksServer } from "../socks/index.ts";
import type { Target } from "../wire/cell.ts";
import { StreamOpenError, StreamReason } from "../wire/reasons.ts";
import type { DirectoryEntry } from "./directory.ts";
import type { PayerChannels } from "../accounting/payer.ts";
import type { NodeMetrics } from "../metrics/index.ts";
import { DestroyReason } from "../wire/cell.ts";

export interface EntryOptions {
  socksHost?: string;
  socksPort?: number;
  /** Relays to build circuits through. */
  directory: () => DirectoryEntry[];
  /** Hops per circuit, 1..5 (default 3). */
  hops?: number;
  /** Retire a circuit for new streams after this long (default 10 min). */
  maxCircuitAgeMs?: number;
  /**
   * A stream open with no answer from the exit within this (default 5 s) retires its circuit for
   * new streams at once and probes its hops: a silent hop (a frozen relay) is avoided by the
   * rebuild, its circuit is closed and the stream retried on the new one.
   */
  streamOpenTimeoutMs?: number;
  /** Every hop must answer a probe within this (default 2 s). */
  probeTimeoutMs?: number;
  /** Each hop of a build must answer within this (default 5 s). */
  buildStepTimeoutMs?: number;
  /** A relay found silent or unreachable is left out of new paths for this long (default 10 min). */
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
  /** Prometheus metrics (relayer/src/metrics): circuit builds, failovers, streams, errors. */
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
  ) => Promise<import("node:stream").Duplex>;
  /** Circuits currently open. */
  readonly circuits: () => ClientCircuit[];
  close(): Promise<void>;
}

/** Picks `hops` distinct relays, the last an exit, preferring regions not used yet. */
export function choosePath(
  relays: readonly DirectoryEntry[],
  hops: number,
  avoid: ReadonlySet<string> = new Set(),
): DirectoryEntry[] {
  const usable = relays.filter((r) => !avoid.has(r.name));
  const exits = usable.filter((r) => r.exit);
  if (exits.length === 0) throw new StreamOpenError(StreamReason.networkUnreachable, "no exit relay available");
  const exit = exits[randomInt(exits.length)] as DirectoryEntry;
  const path = [exit];
  for (let i = 1; i < hops; i++) {
    const left = usable.filter((r) => !path.includes(r));
    if (left.length === 0)
      throw new StreamOpenError(StreamReason.networkUnreachable, `need ${hops} relays, have ${path.length}`);
    const regions = new Set(path.map((r) => r.region));
    const diverse = left.filter((r) => r.region === undefined || !regions.has(r.region));
    const pool = diverse.length > 0 ? diverse : left;
    path.unshift(pool[randomInt(pool.length)] as DirectoryEntry);
  }
  return path;
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

export async function startEntry(options: EntryOptions): Promise<EntryNode> {
  const log = options.logger ?? silentLogger;
  const hops = options.hops ?? 3;
  if (!Number.isInteger(hops) || hops < 1 || hops > 5) throw new RangeError(`hops: expected 1..5, got ${hops}`);
  const maxAge = options.maxCircuitAgeMs ?? 10 * 60_000;
  const streamOpenTimeoutMs = options.streamOpenTimeoutMs ?? 5_000;
  const probeTimeoutMs = options.probeTimeoutMs ?? 2_000;
  const buildStepTimeoutMs = options.buildStepTimeoutMs ?? 5_000;
  const suspectMs = options.suspectMs ?? 10 * 60_000;
  const paymentBackoffMs = options.paymentBackoffMs ?? 10_000;
  /** Why and until when new streams are refused after a hop stopped serving this payer. */
  let paymentStop: { message: string; until: number } | undefined;
  /** When relays stopped this payer within the back-off (at most a few: older ones are dropped). */
  const paymentStops: number[] = [];

  /** Relay name → Date.now() until which new paths avoid it (bounded by the directory's size). */
  const suspects = new Map<string, number>();
  const pathNames = new WeakMap<ClientCircuit, string[]>();

  const suspect = (name: string | undefined, why: string) => {
    if (name === undefined) return;
    suspects.set(name, Date.now() + suspectMs);
    options.metrics?.failover(why.startsWith("circuit build") ? "build_failed" : "probe_silent");
    log.warn("relay suspected: new circuits avoid it", { relay: name, why, ms: suspectMs });
  };
  /** `avoid` plus the relays suspected now; forgets expired suspicions. */
  const avoiding = (avoid: ReadonlySet<string>): Set<string> => {
    const now = Date.now();
    const out = new Set(avoid);
    for (const [name, until] of suspects) {
      if (until <= now) suspects.delete(name);
      else out.add(name);
    }
    return out;
  };
  const muxes = new Map<string, Promise<CircuitMux>>();
  const circuits = new Map<string, Promise<ClientCircuit>>();
  const open = new Set<ClientCircuit>();
  let closing = false;

  const muxTo = (relay: DirectoryEntry): Promise<CircuitMux> => {
    const key = Buffer.from(relay.keys.keysHash).toString("hex");
    let mux = muxes.get(key);
    if (!mux) {
      mux = Link.connect(relay.host, relay.port, relay.keys).then(
        (link) => new CircuitMux(link, () => muxes.delete(key)),
      );
      mux.catch(() => muxes.delete(key));
      muxes.set(key, mux);
    }
    return mux;
  };

  const build = async (avoid: Set<string>): Promise<ClientCircuit> => {
    const relays = options.directory();
    let path: DirectoryEntry[];
    try {
      path = choosePath(relays, hops, avoiding(avoid));
    } catch {
      // Too many relays suspected to make a path: a suspicion is a guess, so try them again.
      path = choosePath(relays, hops, avoid);
    }
    const started = performance.now();
    const timed = options.metrics?.timeCircuitBuild();
    let circuit: ClientCircuit;
    try {
      const mux = await muxTo(path[0] as DirectoryEntry);
      circuit = await ClientCircuit.build(mux, path, {
        stepTimeoutMs: buildStepTimeoutMs,
        payer: options.payer ? { channels: options.payer, operators: path.map((r) => r.operator) } : undefined,
      });
    } catch (error) {
      // The hop that did not answer or could not be reached (a link to hop 1 that failed: hop 0).
      options.metrics?.error("circuit_build");
      const hop = error instanceof CircuitError ? error.hop : 0;
      if (hop !== undefined) suspect(path[hop]?.name, `circuit build: ${(error as Error).message}`);
      throw error;
    }
    timed?.(path.length);
    pathNames.set(
      circuit,
      path.map((r) => r.name),
    );
    open.add(circuit);
    circuit.onClose((error) => {
      open.delete(circuit);
      if (error.reason === DestroyReason.payment && !closing) {
        // One relay's stop makes new paths avoid that relay (it may be hostile, or our lock with it
        // short); a second stop within the back-off — another relay, or the same one when no path
        // avoids it — means this payer cannot pay: then every new stream is refused for a while.
        const relay = error.hop === undefined ? undefined : pathNames.get(circuit)?.[error.hop];
        const now = Date.now();
        while (paymentStops.length > 0 && now - paymentStops[0]! > paymentBackoffMs) paymentStops.shift();
        paymentStops.push(now);
        if (paymentStops.length > 16) paymentStops.shift();
        if (relay !== undefined) suspect(relay, error.message);
        if (paymentStops.length >= 2 || relay === undefined) {
          paymentStop = { message: error.message, until: now + paymentBackoffMs };
          log.error("relays stopped serving this payer: new streams are refused for a while", {
            error: error.message,
            ms: paymentBackoffMs,
          });
        } else log.warn("a relay stopped serving this payer: new paths avoid it", { relay, error: error.message });
      } else if (!closing) log.info("circuit closed", { reason: error.reason, error: error.message });
    });
    log.info("circuit built", {
      hops: path.length,
      ms: Math.round(performance.now() - started),
      path: path.map((r) => r.name).join(">"),
    });
    return circuit;
  };

  /** The live circuit for an isolation key, building one (retrying other relays) if needed. */
  const circuitFor = async (isolation: string, avoid = new Set<string>()): Promise<ClientCircuit> => {
    const current = circuits.get(isolation);
    if (current) {
      const c = await current.catch(() => undefined);
      if (c && !c.retired && Date.now() - c.createdAt < maxAge) return c;
      if (circuits.get(isolation) === current) circuits.delete(isolation);
    }
    const next = (async () => {
      let lastError: unknown;
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          return await build(avoid);
        } catch (error) {
          lastError = error;
          log.warn("circuit build failed", { attempt, error: (error as Error).message });
        }
      }
      throw new StreamOpenError(
        StreamReason.networkUnreachable,
        `could not build a circuit: ${(lastError as Error).message}`,
        { cause: lastError },
      );
    })();
    circuits.set(isolation, next);
    next.catch(() => circuits.get(isolation) === next && circuits.delete(isolation));
    return next;
  };

  /**
   * Opens a stream on `circuit`; past `streamOpenTimeoutMs` without an answer the circuit takes no
   * new streams, and if a probe finds a silent hop, that relay is suspected and the circuit closed
   * (which fails this open, so the caller retries on a fresh circuit that avoids the relay).
   */
  const openOn = async (circuit: ClientCircuit, target: Target, signal?: AbortSignal) => {
    const timer = setTimeout(() => {
      if (circuit.closed) return;
      circuit.retire();
      log.warn("stream open timed out: circuit retired, probing its hops", { ms: streamOpenTimeoutMs });
      void circuit.probe(probeTimeoutMs).then((silent) => {
        if (circuit.closed) return;
        if (silent < 0) {
          // Every hop answered: the target is slow, not a relay. The circuit is fine for new streams.
          log.info("every hop answered the probe: circuit reinstated");
          return circuit.reinstate();
        }
        suspect(pathNames.get(circuit)?.[silent], `hop ${silent + 1} did not answer a probe`);
        circuit.close();
      });
    }, streamOpenTimeoutMs);
    try {
      return await circuit.openStream(target, signal);
    } finally {
      clearTimeout(timer);
    }
  };

  /** Fails at once while a payment stop holds (REP 0x02, "connection not allowed"). */
  const checkPayment = () => {
    if (paymentStop && Date.now() < paymentStop.until)
      throw new StreamOpenError(StreamReason.notAllowed, `payment: ${paymentStop.message}`);
  };
  const openStream = async (target: Target, isolation = "", signal?: AbortSignal) => {
    checkPayment();
    const circuit = await circuitFor(isolation);
    try {
      return await openOn(circuit, target, signal);
    } catch (error) {
      // The exit's verdict (refused, unreachable, not allowed) is final; a dead circuit is not,
      // unless relays stopped serving this payer (checkPayment below then refuses at once).
      if (!circuit.closed || signal?.aborted) throw error;
      log.info("stream failed on a dying circuit: retrying on a fresh one");
      options.metrics?.failover("stream_retry");
      checkPayment();
      const fresh = await circuitFor(isolation);
      return openOn(fresh, target, signal);
    }
  };

  const socksOpen: OpenStream = async (request, signal) => {
    let stream;
    try {
      stream = await openStream(request.target, isolationKey(request.username, request.password), signal);
    } catch (error) {
      options.metrics?.error("stream_open");
      throw error;
    }
    const metrics = options.metrics;
    if (metrics) {
      metrics.streamsOpened.inc();
      stream.once("close", () => metrics.streamsClosed.inc());
    }
    return { stream };
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
      for (const c of open) if (c.streamCount === 0 && (c.retired || now - c.createdAt >= maxAge)) c.close();
    },
    Math.max(50, Math.min(30_000, maxAge / 2)),
  );
  sweeper.unref();
  // Build the default circuit now, so that the first connection does not wait for it.
  circuitFor("").catch((error: Error) => log.warn("first circuit not built yet", { error: error.message }));
  log.info("SOCKS5 entry listening", { host: socks.address.host, port: socks.address.port, hops });

  return {
    socks,
    openStream,
    circuits: () => [...open],
    close: async () => {
      closing = true;
      clearInterval(sweeper);
      await socks.close();
      for (const c of [...open]) c.close();
      for (const m of muxes.values())
        await m.then(
          (x) => x.link.close(),
          () => {},
        );
    },
  };
}

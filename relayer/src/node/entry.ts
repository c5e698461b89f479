/**
 * The local node a user's apps talk to: a SOCKS5 entry on 127.0.0.1:10809 whose streams leave
 * through circuits of relays. Circuits are built ahead of time, shared by streams with the same
 * isolation key (the SOCKS5 username and password, Tor's IsolateSOCKSAuth), retired after `maxCircuitAgeMs`,
 * and replaced when one dies: a stream that could not open because its circuit died is retried
 * once on a fresh circuit through other relays.
 */
import { randomInt } from "node:crypto";
import { ClientCircuit } from "../circuit/client.ts";
import { CircuitMux } from "../circuit/mux.ts";
import { Link } from "../link/link.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { startSocksServer } from "../socks/index.ts";
import type { OpenStream, SocksServer } from "../socks/index.ts";
import type { Target } from "../wire/cell.ts";
import { StreamOpenError, StreamReason } from "../wire/reasons.ts";
import type { DirectoryEntry } from "./directory.ts";

export interface EntryOptions {
  socksHost?: string;
  socksPort?: number;
  /** Relays to build circuits through. */
  directory: () => DirectoryEntry[];
  /** Hops per circuit, 1..5 (default 3). */
  hops?: number;
  /** Retire a circuit for new streams after this long (default 10 min). */
  maxCircuitAgeMs?: number;
  socksAuth?: { verify(username: string, password: string): boolean };
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
    const path = choosePath(options.directory(), hops, avoid);
    const started = performance.now();
    const mux = await muxTo(path[0] as DirectoryEntry);
    const circuit = await ClientCircuit.build(mux, path);
    open.add(circuit);
    circuit.onClose((error) => {
      open.delete(circuit);
      if (!closing) log.info("circuit closed", { reason: error.reason, error: error.message });
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
      if (c && !c.closed && Date.now() - c.createdAt < maxAge) return c;
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

  const openStream = async (target: Target, isolation = "", signal?: AbortSignal) => {
    const circuit = await circuitFor(isolation);
    try {
      return await circuit.openStream(target, signal);
    } catch (error) {
      // The exit's verdict (refused, unreachable, not allowed) is final; a dead circuit is not.
      if (!circuit.closed || signal?.aborted) throw error;
      log.info("stream failed on a dying circuit: retrying on a fresh one");
      const fresh = await circuitFor(isolation);
      return fresh.openStream(target, signal);
    }
  };

  const socksOpen: OpenStream = async (request, signal) => ({
    stream: await openStream(request.target, isolationKey(request.username, request.password), signal),
  });
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
      for (const c of open) if (c.streamCount === 0 && now - c.createdAt >= maxAge) c.close();
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

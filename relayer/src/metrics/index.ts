/**
 * Prometheus metrics of a node (entry, relay or exit), with prom-client: one registry per node
 * (`createMetrics`), the metric set the dashboards read, and a small HTTP server for `/metrics`
 * bound to 127.0.0.1 by default (`startMetricsServer`). Nothing here touches the data plane: the
 * layers call the counters and timers (see docs/operations.md, "Metrics", for who calls what).
 *
 * Labels are closed sets (`direction`, `ErrorKind`, `FailoverReason`…): an unknown value is
 * counted as "other", so that no caller can grow the number of series without bound, and no label
 * carries an address, a destination or a key.
 *
 * Port convention (deploy/prometheus/): X0T_METRICS_BASE_PORT (default 9464) is the entry's port
 * and relay i (1, 2, …) listens on base + i. A node started alone takes X0T_METRICS_PORT, or
 * `--metrics host:port`.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The entry's metrics port by default; relay i gets base + i. */
export const DEFAULT_METRICS_BASE_PORT = 9464;

export const ROLES = ["entry", "relay", "exit"] as const;
export type NodeRole = (typeof ROLES)[number];
export const DIRECTIONS = ["forward", "backward"] as const;
export type Direction = (typeof DIRECTIONS)[number];
/** What went wrong, by layer; anything else is "other". */
export const ERROR_KINDS = [
  "handshake",
  "admission",
  "protocol",
  "authentication",
  "circuit_build",
  "stream_open",
  "exit_connect",
  "exit_policy",
  "resource_limit",
  "payment",
  "chain",
  "other",
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];
/** Why the entry moved traffic off a circuit or a relay. */
export const FAILOVER_REASONS = ["build_failed", "circuit_closed", "probe_silent", "stream_retry", "other"] as const;
export type FailoverReason = (typeof FAILOVER_REASONS)[number];
/** What the mesh decided (mesh/execute.ts); anything else is "other". */
export const MESH_ACTIONS = [
  "suspect",
  "promote-standby",
  "rebuild",
  "retry-stream",
  "retire",
  "close",
  "other",
] as const;
export const MESH_LINK_FAILURES = ["closed", "cell-error", "other"] as const;
/** Why a descriptor was dropped (mesh/descriptor.ts DropReason); anything else is "other". */
export const DESCRIPTOR_DROP_REASONS = [
  "malformed",
  "bad-keys",
  "not-yet-valid",
  "expired",
  "validity-too-long",
  "bad-signature",
  "unregistered",
  "wrong-signer",
  "keys-mismatch",
  "endpoint-mismatch",
  "region-mismatch",
  "unstaked",
  "unknown-signer",
  "trust-unavailable",
  "stale",
  "signer-bound",
  "operator-held",
  "store-full",
  "other",
] as const;
export const RECEIPT_OUTCOMES = ["accepted", "refused", "submitted"] as const;
export type ReceiptOutcome = (typeof RECEIPT_OUTCOMES)[number];
export const BATCH_STATUSES = ["sent", "confirmed", "failed"] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];
/**
 * What became of a payer's lock request at a relay: landed (a lock), or why not — dropped before
 * any gas (too_small, bad_signature, unknown_key, queue_full, refused: the simulated batch said the
 * contract would refuse it), waiting (rate_limited), rejected on-chain anyway (a race), failed (the
 * transaction was not mined).
 */
export const LOCK_REQUEST_OUTCOMES = [
  "landed",
  "too_small",
  "bad_signature",
  "unknown_key",
  "queue_full",
  "refused",
  "rate_limited",
  "rejected",
  "failed",
] as const;
export type LockRequestOutcome = (typeof LOCK_REQUEST_OUTCOMES)[number];

const oneOf = <T extends string>(allowed: readonly T[], value: string, fallback: T): T =>
  (allowed as readonly string[]).includes(value) ? (value as T) : fallback;

/** Seconds; a hybrid X25519 + ML-KEM-768 handshake takes ~1–2 ms on a loaded core. */
export const HANDSHAKE_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Seconds; a 3-hop build on loopback takes ~10 ms, across continents a second or more. */
export const CIRCUIT_BUILD_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface NodeMetrics {
  readonly registry: Registry;
  /** Relay cells passed on, by direction (forward: towards the exit). */
  readonly cellsRelayed: Counter<"direction">;
  /** Payload bytes of those cells. */
  readonly bytesRelayed: Counter<"direction">;
  readonly circuitsOpened: Counter;
  readonly circuitsClosed: Counter;
  /** Circuits alive now: `set` it, or give `createMetrics` a `circuitsOpen` callback. */
  readonly circuitsOpen: Gauge;
  readonly streamsOpened: Counter;
  readonly streamsClosed: Counter;
  readonly handshakeSeconds: Histogram<"side">;
  readonly circuitBuildSeconds: Histogram<"hops">;
  readonly failovers: Counter<"reason">;
  readonly receipts: Counter<"outcome">;
  readonly batches: Counter<"status">;
  readonly lockRequests: Counter<"outcome">;
  readonly errors: Counter<"kind">;
  readonly meshDecisions: Counter<"action">;
  readonly meshBeacons: Counter<"outcome">;
  readonly meshProbes: Counter<"outcome">;
  readonly meshLinkFailures: Counter<"kind">;
  readonly descriptorsDropped: Counter<"reason">;

  /**
   * Mirrors a mesh counter (mesh/counters.ts `onIncrement`): mesh_decisions{action},
   * mesh_beacons_sent/lost, mesh_probes_sent/lost, mesh_link_failures{kind},
   * mesh_descriptors_dropped{reason}. Unknown names are ignored.
   */
  mesh(name: string, labels: Record<string, string>, by?: number): void;
  /** Counts one relayed cell of `bytes` payload bytes. */
  cell(direction: Direction, bytes: number): void;
  error(kind: ErrorKind | string): void;
  failover(reason: FailoverReason | string): void;
  receipt(outcome: ReceiptOutcome): void;
  batch(status: BatchStatus): void;
  lockRequest(outcome: LockRequestOutcome): void;
  /** Starts a handshake timer; call the result when it completes. */
  timeHandshake(side: "responder" | "initiator"): () => number;
  /** Starts a circuit-build timer; call the result with the circuit's hop count when it is built. */
  timeCircuitBuild(): (hops: number) => number;
}

export interface MetricsOptions {
  /** The node's name (NODE_ID), a label of `x0t_node_info`. */
  nodeId?: string;
  role?: NodeRole;
  /** Read at scrape time for `x0t_circuits_open` (e.g. `() => core.circuits`). */
  circuitsOpen?: () => number;
  /** Read at scrape time for `x0t_streams_open`. */
  streamsOpen?: () => number;
  /** prom-client's process and Node.js metrics (CPU, memory, event-loop lag): default true. */
  defaultMetrics?: boolean;
}

/** A registry with the node's metric set. Each call makes a new, independent registry. */
export function createMetrics(options: MetricsOptions = {}): NodeMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const info = new Gauge({
    name: "x0t_node_info",
    help: "Always 1; labels name the node and its role",
    labelNames: ["node_id", "role"] as const,
    registers,
  });
  info.set({ node_id: options.nodeId ?? "", role: options.role ?? "relay" }, 1);

  const cellsRelayed = new Counter({
    name: "x0t_cells_relayed_total",
    help: "Relay cells passed on by this node",
    labelNames: ["direction"] as const,
    registers,
  });
  const bytesRelayed = new Counter({
    name: "x0t_bytes_relayed_total",
    help: "Payload bytes of the relay cells passed on by this node",
    labelNames: ["direction"] as const,
    registers,
  });
  for (const direction of DIRECTIONS) {
    cellsRelayed.inc({ direction }, 0);
    bytesRelayed.inc({ direction }, 0);
  }
  const circuitsOpened = new Counter({ name: "x0t_circuits_opened_total", help: "Circuits created", registers });
  const circuitsClosed = new Counter({ name: "x0t_circuits_closed_total", help: "Circuits closed", registers });
  const circuitsOpenFn = options.circuitsOpen;
  const circuitsOpen = new Gauge({
    name: "x0t_circuits_open",
    help: "Circuits alive now",
    registers,
    ...(circuitsOpenFn
      ? {
          collect() {
            this.set(circuitsOpenFn());
          },
        }
      : {}),
  });
  const streamsOpened = new Counter({ name: "x0t_streams_opened_total", help: "Streams opened", registers });
  const streamsClosed = new Counter({ name: "x0t_streams_closed_total", help: "Streams closed", registers });
  const streamsOpenFn = options.streamsOpen;
  new Gauge({
    name: "x0t_streams_open",
    help: "Streams alive now (opened - closed unless a callback reads it)",
    registers,
    async collect() {
      if (streamsOpenFn) return this.set(streamsOpenFn());
      const opened = (await streamsOpened.get()).values[0]?.value ?? 0;
      const closed = (await streamsClosed.get()).values[0]?.value ?? 0;
      this.set(opened - closed);
    },
  });
  const handshakeSeconds = new Histogram({
    name: "x0t_handshake_duration_seconds",
    help: "Hybrid X25519 + ML-KEM-768 handshakes, from hello to keys",
    labelNames: ["side"] as const,
    buckets: HANDSHAKE_BUCKETS,
    registers,
  });
  const circuitBuildSeconds = new Histogram({
    name: "x0t_circuit_build_duration_seconds",
    help: "Circuit builds at the entry, from the first CREATE to the last hop's answer",
    labelNames: ["hops"] as const,
    buckets: CIRCUIT_BUILD_BUCKETS,
    registers,
  });
  const failovers = new Counter({
    name: "x0t_failovers_total",
    help: "Traffic moved off a circuit or a relay",
    labelNames: ["reason"] as const,
    registers,
  });
  const receipts = new Counter({
    name: "x0t_receipts_total",
    help: "Payment receipts: accepted or refused from payers, submitted on-chain",
    labelNames: ["outcome"] as const,
    registers,
  });
  const batches = new Counter({
    name: "x0t_batches_total",
    help: "Receipt batches sent to EpochRewards, by result",
    labelNames: ["status"] as const,
    registers,
  });
  const lockRequests = new Counter({
    name: "x0t_lock_requests_total",
    help: "Payers' lock requests at this relay: landed, or why not",
    labelNames: ["outcome"] as const,
    registers,
  });
  const errors = new Counter({
    name: "x0t_errors_total",
    help: "Errors by kind",
    labelNames: ["kind"] as const,
    registers,
  });
  const meshDecisions = new Counter({
    name: "x0t_mesh_decisions_total",
    help: "Mesh decisions (suspect a relay, promote a standby, rebuild, retry a stream, retire, close)",
    labelNames: ["action"] as const,
    registers,
  });
  const meshBeacons = new Counter({
    name: "x0t_mesh_beacons_total",
    help: "Beacons to the hops of circuits in use: sent, and lost (unanswered for 5 s)",
    labelNames: ["outcome"] as const,
    registers,
  });
  const meshProbes = new Counter({
    name: "x0t_mesh_probes_total",
    help: "Latency and reachability probes (a link handshake) to relays: sent, and lost",
    labelNames: ["outcome"] as const,
    registers,
  });
  const meshLinkFailures = new Counter({
    name: "x0t_mesh_link_failures_total",
    help: "Links and circuits lost under traffic, by kind (closed, a cell that failed its checks)",
    labelNames: ["kind"] as const,
    registers,
  });
  const descriptorsDropped = new Counter({
    name: "x0t_mesh_descriptors_dropped_total",
    help: "Relay descriptors refused, by reason",
    labelNames: ["reason"] as const,
    registers,
  });
  for (const action of MESH_ACTIONS) meshDecisions.inc({ action }, 0);
  for (const outcome of ["sent", "lost"]) {
    meshBeacons.inc({ outcome }, 0);
    meshProbes.inc({ outcome }, 0);
  }
  for (const kind of MESH_LINK_FAILURES) meshLinkFailures.inc({ kind }, 0);
  // Every series exists from the start, so that rate() and the dashboard see zeros, not gaps.
  for (const outcome of RECEIPT_OUTCOMES) receipts.inc({ outcome }, 0);
  for (const status of BATCH_STATUSES) batches.inc({ status }, 0);
  for (const outcome of LOCK_REQUEST_OUTCOMES) lockRequests.inc({ outcome }, 0);
  for (const kind of ERROR_KINDS) errors.inc({ kind }, 0);
  for (const reason of FAILOVER_REASONS) failovers.inc({ reason }, 0);

  // Called for every relay cell: the label lookup is done once here, not per cell.
  const cellChildren = {
    forward: { cells: cellsRelayed.labels("forward"), bytes: bytesRelayed.labels("forward") },
    backward: { cells: cellsRelayed.labels("backward"), bytes: bytesRelayed.labels("backward") },
  };
  return {
    registry,
    cellsRelayed,
    bytesRelayed,
    circuitsOpened,
    circuitsClosed,
    circuitsOpen,
    streamsOpened,
    streamsClosed,
    handshakeSeconds,
    circuitBuildSeconds,
    failovers,
    receipts,
    batches,
    lockRequests,
    errors,
    meshDecisions,
    meshBeacons,
    meshProbes,
    meshLinkFailures,
    descriptorsDropped,
    mesh(name, labels, by = 1) {
      switch (name) {
        case "mesh_decisions":
          return meshDecisions.inc({ action: oneOf(MESH_ACTIONS, labels.action ?? "", "other") }, by);
        case "mesh_beacons_sent":
          return meshBeacons.inc({ outcome: "sent" }, by);
        case "mesh_beacons_lost":
          return meshBeacons.inc({ outcome: "lost" }, by);
        case "mesh_probes_sent":
          return meshProbes.inc({ outcome: "sent" }, by);
        case "mesh_probes_lost":
          return meshProbes.inc({ outcome: "lost" }, by);
        case "mesh_link_failures":
          return meshLinkFailures.inc({ kind: oneOf(MESH_LINK_FAILURES, labels.kind ?? "", "other") }, by);
        case "mesh_descriptors_dropped":
          return descriptorsDropped.inc({ reason: oneOf(DESCRIPTOR_DROP_REASONS, labels.reason ?? "", "other") }, by);
      }
    },
    cell(direction, bytes) {
      const child = cellChildren[direction];
      child.cells.inc();
      child.bytes.inc(bytes);
    },
    error: (kind) => errors.inc({ kind: oneOf(ERROR_KINDS, kind, "other") }),
    failover: (reason) => failovers.inc({ reason: oneOf(FAILOVER_REASONS, reason, "other") }),
    receipt: (outcome) => receipts.inc({ outcome: oneOf(RECEIPT_OUTCOMES, outcome, "refused") }),
    batch: (status) => batches.inc({ status: oneOf(BATCH_STATUSES, status, "failed") }),
    lockRequest: (outcome) => lockRequests.inc({ outcome: oneOf(LOCK_REQUEST_OUTCOMES, outcome, "failed") }),
    timeHandshake: (side) => handshakeSeconds.startTimer({ side }),
    timeCircuitBuild() {
      const end = circuitBuildSeconds.startTimer();
      return (hops: number) => end({ hops: String(hops) });
    },
  };
}

export interface MetricsServer {
  readonly host: string;
  readonly port: number;
  /** http://host:port/metrics */
  readonly url: string;
  close(): Promise<void>;
}

export class MetricsConfigError extends Error {
  override name = "MetricsConfigError";
}

/**
 * Where to serve metrics: `--metrics`/X0T_METRICS ("host:port", "port", or "off"), else
 * X0T_METRICS_PORT on 127.0.0.1; `undefined` means off. Names the variable on a bad value.
 */
export function metricsListen(
  value: string | undefined,
  source = "X0T_METRICS",
): { host: string; port: number } | undefined {
  if (value === undefined || value === "" || value === "off") return undefined;
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || !Number.isInteger(port) || port > 65535)
    throw new MetricsConfigError(`${source}: expected "port", "host:port" or "off", got "${value}"`);
  return { host: (m[1] ?? "127.0.0.1").replace(/^\[|\]$/g, ""), port };
}

/**
 * Serves `registry` as Prometheus text on GET /metrics (HEAD too); every other path is 404 and
 * every other method 405. Binds 127.0.0.1 unless told otherwise: metrics reveal traffic volumes.
 */
export function startMetricsServer(
  registry: Registry,
  options: { host?: string; port?: number } = {},
): Promise<MetricsServer> {
  const host = options.host ?? "127.0.0.1";
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: metrics are at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (error: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${error.message}\n`),
    );
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? DEFAULT_METRICS_BASE_PORT, host, () => {
      server.off("error", reject);
      const { port } = server.address() as AddressInfo;
      const shown = host.includes(":") ? `[${host}]` : host;
      resolve({
        host,
        port,
        url: `http://${shown}:${port}/metrics`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

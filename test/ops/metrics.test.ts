/**
 * relayer/src/metrics: the node's registry and its /metrics server, read over real HTTP on
 * loopback after real increments — the values and the series the dashboard queries.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  DEFAULT_METRICS_BASE_PORT,
  MetricsConfigError,
  type MetricsServer,
  createMetrics,
  metricsListen,
  startMetricsServer,
} from "../../relayer/src/metrics/index.ts";
import { Counters } from "../../relayer/src/mesh/counters.ts";

/** The value of one sample line `name{labels} value` in Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    if (line.slice(0, at) === series) return Number(line.slice(at + 1));
  }
  return undefined;
}

describe("node metrics over HTTP", () => {
  const servers: MetricsServer[] = [];
  after(() => Promise.all(servers.map((s) => s.close())));

  it("serves the counters, gauges and histograms with the values they were given", async () => {
    let circuits = 0;
    const metrics = createMetrics({ nodeId: "node-1", role: "exit", circuitsOpen: () => circuits });
    const server = await startMetricsServer(metrics.registry, { port: 0 });
    servers.push(server);
    assert.equal(server.host, "127.0.0.1", "loopback unless told otherwise");
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    const before = await (await fetch(server.url)).text();
    assert.equal(sample(before, 'x0t_cells_relayed_total{direction="forward"}'), 0, "series exist at zero");
    assert.equal(sample(before, 'x0t_errors_total{kind="handshake"}'), 0);
    assert.equal(sample(before, 'x0t_node_info{node_id="node-1",role="exit"}'), 1);

    for (let i = 0; i < 5; i++) metrics.cell("forward", 1_000);
    metrics.cell("backward", 509);
    metrics.circuitsOpened.inc(3);
    metrics.circuitsClosed.inc();
    circuits = 2;
    metrics.streamsOpened.inc(4);
    metrics.streamsClosed.inc(1);
    metrics.error("handshake");
    metrics.error("exit_connect");
    metrics.error("a message that must never become a label");
    metrics.failover("probe_silent");
    metrics.receipt("accepted");
    metrics.receipt("accepted");
    metrics.receipt("refused");
    metrics.batch("confirmed");
    metrics.handshakeSeconds.observe({ side: "responder" }, 0.0015);
    metrics.handshakeSeconds.observe({ side: "responder" }, 0.3);
    metrics.circuitBuildSeconds.observe({ hops: "3" }, 0.04);
    const endBuild = metrics.timeCircuitBuild();
    const built = endBuild(3);
    assert.ok(built >= 0);

    const response = await fetch(server.url);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.equal(sample(text, 'x0t_cells_relayed_total{direction="forward"}'), 5);
    assert.equal(sample(text, 'x0t_cells_relayed_total{direction="backward"}'), 1);
    assert.equal(sample(text, 'x0t_bytes_relayed_total{direction="forward"}'), 5_000);
    assert.equal(sample(text, 'x0t_bytes_relayed_total{direction="backward"}'), 509);
    assert.equal(sample(text, "x0t_circuits_opened_total"), 3);
    assert.equal(sample(text, "x0t_circuits_closed_total"), 1);
    assert.equal(sample(text, "x0t_circuits_open"), 2, "read from the callback at scrape time");
    assert.equal(sample(text, "x0t_streams_open"), 3, "opened - closed");
    assert.equal(sample(text, 'x0t_errors_total{kind="handshake"}'), 1);
    assert.equal(sample(text, 'x0t_errors_total{kind="exit_connect"}'), 1);
    assert.equal(sample(text, 'x0t_errors_total{kind="other"}'), 1, "an unknown kind is counted as other");
    assert.ok(!text.includes("must never become a label"));
    assert.equal(sample(text, 'x0t_failovers_total{reason="probe_silent"}'), 1);
    assert.equal(sample(text, 'x0t_receipts_total{outcome="accepted"}'), 2);
    assert.equal(sample(text, 'x0t_receipts_total{outcome="refused"}'), 1);
    assert.equal(sample(text, 'x0t_batches_total{status="confirmed"}'), 1);
    assert.equal(sample(text, 'x0t_handshake_duration_seconds_bucket{le="0.002",side="responder"}'), 1);
    assert.equal(sample(text, 'x0t_handshake_duration_seconds_bucket{le="0.5",side="responder"}'), 2);
    assert.equal(sample(text, 'x0t_handshake_duration_seconds_count{side="responder"}'), 2);
    assert.equal(sample(text, 'x0t_handshake_duration_seconds_sum{side="responder"}'), 0.3015);
    assert.equal(sample(text, 'x0t_circuit_build_duration_seconds_count{hops="3"}'), 2);
    assert.equal(sample(text, 'x0t_circuit_build_duration_seconds_bucket{le="0.05",hops="3"}'), 2);
    assert.ok((sample(text, "process_resident_memory_bytes") ?? 0) > 0, "process metrics are there");
  });

  it("mirrors the mesh's counters (decisions, beacons, probes, link failures, descriptor drops) in closed label sets", async () => {
    const metrics = createMetrics({ nodeId: "entry", role: "entry", defaultMetrics: false });
    const counters = new Counters((name, labels, by) => metrics.mesh(name, labels, by));
    const zero = await metrics.registry.metrics();
    assert.equal(sample(zero, 'x0t_mesh_decisions_total{action="promote-standby"}'), 0, "series exist at zero");
    counters.inc("mesh_decisions", { action: "promote-standby" });
    counters.inc("mesh_decisions", { action: "retry-stream" }, 2);
    counters.inc("mesh_decisions", { action: "something-new" });
    counters.inc("mesh_beacons_sent", {}, 6);
    counters.inc("mesh_beacons_lost");
    counters.inc("mesh_probes_sent");
    counters.inc("mesh_link_failures", { kind: "closed" });
    counters.inc("mesh_descriptors_dropped", { reason: "unknown-signer" }, 3);
    counters.inc("mesh_unheard_of"); // ignored
    const text = await metrics.registry.metrics();
    assert.equal(sample(text, 'x0t_mesh_decisions_total{action="promote-standby"}'), 1);
    assert.equal(sample(text, 'x0t_mesh_decisions_total{action="retry-stream"}'), 2);
    assert.equal(sample(text, 'x0t_mesh_decisions_total{action="other"}'), 1, "an unknown action is 'other'");
    assert.equal(sample(text, 'x0t_mesh_beacons_total{outcome="sent"}'), 6);
    assert.equal(sample(text, 'x0t_mesh_beacons_total{outcome="lost"}'), 1);
    assert.equal(sample(text, 'x0t_mesh_probes_total{outcome="sent"}'), 1);
    assert.equal(sample(text, 'x0t_mesh_link_failures_total{kind="closed"}'), 1);
    assert.equal(sample(text, 'x0t_mesh_descriptors_dropped_total{reason="unknown-signer"}'), 3);
  });

  it("answers only GET/HEAD /metrics; registries are independent", async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.cell("forward", 10);
    const server = await startMetricsServer(b.registry, { port: 0 });
    servers.push(server);
    const base = server.url.replace(/\/metrics$/, "");
    assert.equal((await fetch(`${base}/`)).status, 404);
    assert.equal((await fetch(`${base}/metrics/../admin`)).status, 404);
    assert.equal((await fetch(server.url, { method: "POST" })).status, 405);
    const head = await fetch(server.url, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    const text = await (await fetch(`${server.url}?x=1`)).text();
    assert.equal(sample(text, 'x0t_cells_relayed_total{direction="forward"}'), 0, "b did not see a's cell");
    assert.equal(sample(text, "process_resident_memory_bytes"), undefined, "default metrics off");
  });

  it("reads the listen address from its variable, naming it on a bad value; a taken port is an error", async () => {
    assert.equal(metricsListen(undefined), undefined);
    assert.equal(metricsListen("off"), undefined);
    assert.deepEqual(metricsListen("9470"), { host: "127.0.0.1", port: 9470 });
    assert.deepEqual(metricsListen("0.0.0.0:9464"), { host: "0.0.0.0", port: 9464 });
    assert.deepEqual(metricsListen("[::1]:9464"), { host: "::1", port: 9464 });
    assert.throws(
      () => metricsListen("nine", "X0T_METRICS_PORT"),
      (e: unknown) => e instanceof MetricsConfigError && /^X0T_METRICS_PORT: expected/.test((e as Error).message),
    );
    assert.throws(() => metricsListen("70000"), MetricsConfigError);
    assert.equal(DEFAULT_METRICS_BASE_PORT, 9464);
    const first = servers[0]!;
    await assert.rejects(
      startMetricsServer(createMetrics({ defaultMetrics: false }).registry, { port: first.port }),
      /EADDRINUSE/,
    );
  });
});

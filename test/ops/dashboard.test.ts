/**
 * deploy/grafana/x0t-network.json and deploy/prometheus/: every panel's query names metrics a
 * node really exports; the committed targets follow the port convention; and, where Debian's
 * `prometheus` is installed (apt-get install prometheus), a real Prometheus scrapes two real
 * metrics servers with the committed scrape settings and answers every panel's query — the
 * panels are then rendered from those answers to test-results/ops/dashboard.html (Grafana itself
 * is not packaged for Debian). Without Prometheus that part skips, saying so.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { localTargets } from "../../deploy/prometheus/targets.ts";
import { type MetricsServer, createMetrics, startMetricsServer } from "../../relayer/src/metrics/index.ts";
import { closedPort } from "../helpers/net.ts";

interface Panel {
  id: number;
  title: string;
  type: string;
  fieldConfig: { defaults: { unit?: string } };
  targets: { expr: string; legendFormat?: string }[];
}
const dashboard = JSON.parse(readFileSync("deploy/grafana/x0t-network.json", "utf8")) as {
  uid: string;
  panels: Panel[];
};
/** Grafana's macro, as Grafana would fill it for a short range. */
const promql = (expr: string) => expr.replaceAll("$__rate_interval", "30s");
const metricNames = (expr: string) =>
  [...expr.matchAll(/\b([a-z_][a-z0-9_]*)\s*(?:\{|\[)/g)].map((m) => m[1]!).filter((n) => n !== "by");

const hasPrometheus = spawnSync("prometheus", ["--version"]).status === 0;

describe("Grafana dashboard and Prometheus scrape config", () => {
  const servers: MetricsServer[] = [];
  let prometheus: ChildProcess | undefined;
  let more: NodeJS.Timeout | undefined;
  let dir: string | undefined;
  after(async () => {
    clearInterval(more);
    prometheus?.kill("SIGTERM");
    await Promise.all(servers.map((s) => s.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("every panel queries metrics a node exports (up aside), with a unit", async () => {
    const metrics = createMetrics({ nodeId: "n", role: "relay" });
    metrics.handshakeSeconds.observe({ side: "responder" }, 0.001);
    metrics.circuitBuildSeconds.observe({ hops: "3" }, 0.01);
    const exported = new Set(
      (await metrics.registry.metrics())
        .split("\n")
        .flatMap((l) => (l.startsWith("#") || l === "" ? [] : [l.split(/[{ ]/)[0]!])),
    );
    assert.ok(dashboard.panels.length >= 12);
    const titles = dashboard.panels.map((p) => p.title).join(" | ");
    for (const needed of [
      "Cells",
      "Bytes",
      "Circuits",
      "Streams",
      "Handshake",
      "Circuit build",
      "Failovers",
      "Receipts",
      "batches",
      "Errors",
    ])
      assert.ok(titles.includes(needed), `a panel about ${needed}: ${titles}`);
    for (const panel of dashboard.panels) {
      assert.ok(panel.fieldConfig.defaults.unit, `${panel.title} has a unit`);
      for (const { expr } of panel.targets)
        for (const name of metricNames(expr))
          assert.ok(name === "up" || exported.has(name), `${panel.title}: ${name} is not exported by a node`);
    }
  });

  it("targets/local.json follows the port convention: entry 9464, relay i on 9464 + i, the last two exits", () => {
    const committed = JSON.parse(readFileSync("deploy/prometheus/targets/local.json", "utf8")) as unknown;
    assert.deepEqual(committed, localTargets(9464, 5, "127.0.0.1", 2));
    assert.deepEqual(
      localTargets(9464, 5, "127.0.0.1", 2).map((g) => g.labels.role),
      ["entry", "relay", "relay", "relay", "exit", "exit"],
    );
    assert.deepEqual(
      localTargets(9500, 2).map((g) => g.targets[0]),
      ["127.0.0.1:9500", "127.0.0.1:9501", "127.0.0.1:9502"],
    );
    assert.throws(() => localTargets(65535, 5), /--base/);
    assert.throws(() => localTargets(9464, 2, "127.0.0.1", 3), /--exits/);
  });

  it(
    "a real Prometheus scrapes two nodes and answers every panel's query; panels rendered to test-results/ops/",
    { skip: hasPrometheus ? false : "prometheus is not installed (apt-get install prometheus)" },
    async () => {
      const check = spawnSync("promtool", ["check", "config", "deploy/prometheus/prometheus.yml"], {
        encoding: "utf8",
      });
      assert.equal(check.status, 0, check.stdout + check.stderr);

      // Two nodes with traffic, on the convention's ports relative to a free base.
      const entry = createMetrics({ nodeId: "entry", role: "entry", circuitsOpen: () => 2 });
      const relay = createMetrics({ nodeId: "relay-1", role: "exit", circuitsOpen: () => 3 });
      servers.push(
        await startMetricsServer(entry.registry, { port: 0 }),
        await startMetricsServer(relay.registry, { port: 0 }),
      );
      const traffic = () => {
        for (const m of [entry, relay]) {
          for (let i = 0; i < 50; i++) m.cell(i % 3 ? "forward" : "backward", 1_400);
          m.streamsOpened.inc();
          m.handshakeSeconds.observe({ side: "responder" }, 0.0012);
          m.circuitBuildSeconds.observe({ hops: "3" }, 0.02);
          m.receipt("accepted");
          m.batch("confirmed");
          m.error("exit_connect");
          m.failover("probe_silent");
          m.circuitsOpened.inc();
        }
      };
      traffic();
      dir = await mkdtemp(join(tmpdir(), "x0t-prom-"));
      // The committed scrape job with these two nodes as its targets file.
      const committed = readFileSync("deploy/prometheus/prometheus.yml", "utf8")
        .replace("scrape_interval: 5s", "scrape_interval: 1s")
        .replace("scrape_timeout: 4s", "scrape_timeout: 1s")
        .replace("- deploy/prometheus/targets/*.json", `- ${join(dir, "*.json")}`);
      writeFileSync(join(dir, "prometheus.yml"), committed);
      writeFileSync(
        join(dir, "nodes.json"),
        JSON.stringify([
          { targets: [`127.0.0.1:${servers[0]!.port}`], labels: { role: "entry", node: "entry" } },
          { targets: [`127.0.0.1:${servers[1]!.port}`], labels: { role: "relay", node: "relay-1" } },
        ]),
      );
      const port = await closedPort();
      prometheus = spawn(
        "prometheus",
        [
          `--config.file=${join(dir, "prometheus.yml")}`,
          `--storage.tsdb.path=${join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${port}`,
        ],
        { stdio: "ignore" },
      );
      const api = `http://127.0.0.1:${port}/api/v1`;
      const query = async (q: string) => {
        const r = await fetch(`${api}/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(5_000) });
        return (await r.json()) as {
          status: string;
          error?: string;
          data: { result: { metric: Record<string, string>; value: [number, string] }[] };
        };
      };
      /** Polls `q` until `ok` holds (bounded). */
      const until = async (q: string, ok: (values: number[]) => boolean, what: string) => {
        const deadline = Date.now() + 30_000;
        for (;;) {
          const answer = await query(q).catch(() => undefined);
          const values = answer?.data.result.map((s) => Number(s.value[1])) ?? [];
          if (answer?.status === "success" && ok(values)) return values;
          if (Date.now() > deadline) throw new Error(`${what}: ${JSON.stringify(answer)}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      await until('sum(up{job="x0t"})', (v) => v[0] === 2, "both nodes up");
      // More traffic after the first scrapes, so that every rate has two samples that differ.
      more = setInterval(traffic, 500);
      await until(
        'count(rate(x0t_cells_relayed_total{job="x0t"}[30s]) > 0)',
        (v) => v[0] === 4,
        "cells flowing on both nodes, both directions",
      );
      await until('sum(x0t_circuits_open{job="x0t"})', (v) => v[0] === 5, "circuits open 2 + 3");
      const handshakeP50 = await until(
        'histogram_quantile(0.5, sum by (le) (rate(x0t_handshake_duration_seconds_bucket{job="x0t"}[30s])))',
        (v) => v.length === 1 && Number.isFinite(v[0]),
        "handshake p50",
      );
      assert.ok(
        handshakeP50[0]! > 0.001 && handshakeP50[0]! <= 0.002,
        `1.2 ms falls in the (1 ms, 2 ms] bucket: ${handshakeP50[0]}`,
      );

      // Every panel (traffic still flowing): the query is valid PromQL and returns series; render them.
      const rendered: string[] = [];
      const end = Math.floor(Date.now() / 1000);
      for (const panel of dashboard.panels) {
        const rows: string[] = [];
        for (const target of panel.targets) {
          const answer = await query(promql(target.expr));
          assert.equal(answer.status, "success", `${panel.title}: ${target.expr}: ${answer.error ?? ""}`);
          assert.ok(answer.data.result.length > 0, `${panel.title}: ${target.expr} returned no series`);
          const range = (await (
            await fetch(
              `${api}/query_range?query=${encodeURIComponent(promql(target.expr))}&start=${end - 30}&end=${end}&step=1`,
            )
          ).json()) as { data: { result: { metric: Record<string, string>; values: [number, string][] }[] } };
          // One row per series of the instant answer; its last 30 s as a sparkline where stored.
          const history = new Map(range.data.result.map((r) => [JSON.stringify(r.metric), r.values]));
          for (const series of answer.data.result) {
            const label =
              (target.legendFormat ?? "").replace(/\{\{(\w+)\}\}/g, (_, k: string) => series.metric[k] ?? "") ||
              panel.title;
            const points = (history.get(JSON.stringify(series.metric)) ?? []).map(([, v]) => Number(v));
            rows.push(
              `<tr><td>${label}</td><td>${sparkline(points.filter(Number.isFinite))}</td><td>${Number(series.value[1]).toPrecision(4)} ${panel.fieldConfig.defaults.unit}</td></tr>`,
            );
          }
        }
        rendered.push(`<section><h2>${panel.title}</h2><table>${rows.join("")}</table></section>`);
      }
      clearInterval(more);
      mkdirSync("test-results/ops", { recursive: true });
      writeFileSync(
        "test-results/ops/dashboard.html",
        `<!doctype html><meta charset="utf-8"><title>${dashboard.uid}</title><style>body{font:14px sans-serif;display:grid;grid-template-columns:1fr 1fr;gap:1em}td{padding:0 .5em}</style>${rendered.join("\n")}\n`,
      );
    },
  );
});

/** A 200×40 SVG polyline of `points` (the panel's last 30 s). */
function sparkline(points: number[]): string {
  if (points.length === 0) return "";
  const max = Math.max(...points);
  const min = Math.min(...points);
  const span = max - min || 1;
  const xy = points.map(
    (p, i) => `${((i / Math.max(1, points.length - 1)) * 200).toFixed(1)},${(38 - ((p - min) / span) * 36).toFixed(1)}`,
  );
  return `<svg width="200" height="40"><polyline fill="none" stroke="#3274d9" stroke-width="1.5" points="${xy.join(" ")}"/></svg>`;
}

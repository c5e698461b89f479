/**
 * Monitor and Execute (mesh/monitor.ts, mesh/execute.ts) driven by an explicit clock and recording
 * effects: the beacon and probe schedule, measurements into Knowledge, the frozen hop found from
 * the beacons, and the decisions that move streams to the standby.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { analyzeHop } from "../../relayer/src/mesh/analyze.ts";
import { Counters } from "../../relayer/src/mesh/counters.ts";
import { type CircuitView, decide, type ExecuteEffects, Executor } from "../../relayer/src/mesh/execute.ts";
import { Knowledge } from "../../relayer/src/mesh/knowledge.ts";
import { Monitor, phaseOf } from "../../relayer/src/mesh/monitor.ts";
import { createLogger } from "../../relayer/src/log.ts";

function clock(start = 0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("mesh monitor", () => {
  it("beacons links in use every 500 ms and probes idle known nodes every 30 s, staggered", () => {
    const c = clock(1_000);
    const beacons: [string, number, number][] = [];
    const probes: [string, number][] = [];
    const m = new Monitor({
      now: c.now,
      effects: {
        sendBeacon: (link, seq) => beacons.push([link, seq, c.now()]),
        sendProbe: (node) => probes.push([node, c.now()]),
      },
    });
    m.linkInUse("L1", "r1");
    m.setKnownNodes(["r1", "r2", "r3"]);
    for (let i = 0; i <= 61_000 / 50; i++) {
      m.tick();
      c.advance(50);
    }
    const times = beacons.filter(([l]) => l === "L1").map(([, , t]) => t);
    assert.equal(times[0], 1_000, "the first beacon goes at once");
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    assert.ok(
      gaps.every((g) => g === 500),
      `gaps ${[...new Set(gaps)]}`,
    );
    assert.equal(times.length, 123);
    assert.equal(probes.filter(([n]) => n === "r1").length, 0, "a node in use is measured by its beacons");
    for (const node of ["r2", "r3"]) {
      const at = probes.filter(([n]) => n === node).map(([, t]) => t);
      assert.equal(at.length, 2, `${node} probed twice in 61 s`);
      assert.ok(at[0]! - 1_000 >= phaseOf(node, 30_000) && at[0]! - 1_000 < phaseOf(node, 30_000) + 50);
      assert.equal(at[1]! - at[0]!, 30_000);
    }
    assert.equal(m.counters.get("mesh_beacons_sent"), 123);
  });

  it("echoes become RTT samples in Knowledge; silence becomes lost probes, a frozen verdict and a failure", () => {
    const c = clock();
    const k = new Knowledge(":memory:");
    const sent: number[] = [];
    const m = new Monitor({
      now: c.now,
      knowledge: k,
      epochOf: (ms) => BigInt(Math.floor(ms / 60_000)),
      effects: { sendBeacon: (_l, seq) => sent.push(seq), sendProbe: () => {} },
    });
    m.linkInUse("L", "r");
    // 10 s answered at 20 ms, then the relay freezes (SIGSTOP): nothing comes back.
    let frozenAt: number | undefined;
    const freezeAt = 10_000;
    for (let t = 0; t < 20_000; t += 10) {
      m.tick();
      const last = sent.at(-1);
      if (last !== undefined && c.now() < freezeAt && c.now() % 500 === 20) m.echo("L", last);
      const verdict = analyzeHop(m.observations("L"), { rttMs: 20, jitterMs: 1, loss: 0 }, c.now());
      if (frozenAt === undefined && verdict.state === "frozen") frozenAt = c.now();
      c.advance(10);
    }
    assert.ok(frozenAt !== undefined, "the freeze is seen from the beacons alone");
    assert.ok(frozenAt - freezeAt <= 1_000, `frozen seen ${frozenAt - freezeAt} ms after the freeze`);
    const s = k.stats("r");
    assert.equal(s.answered, 20);
    assert.equal(s.rttMs, 20);
    assert.ok(s.probes > 20 && s.probes < 40, `unanswered beacons given up on count as lost (${s.probes})`);
    m.closed("L");
    assert.equal(k.stats("r").failures, 1);
    assert.equal(analyzeHop(m.observations("L"), { rttMs: 20, jitterMs: 1, loss: 0 }, c.now()).state, "dead");
    assert.equal(k.uptime("r", 0n).answered, 20);
  });
});

describe("mesh monitor: traffic, pace and per-hop round trips", () => {
  it("a busy link is not beaconed; once quiet for quietMs it is asked at once", () => {
    const c = clock();
    const sent: number[] = [];
    const m = new Monitor({ now: c.now, effects: { sendBeacon: () => sent.push(c.now()), sendProbe: () => {} } });
    m.linkInUse("L", "r");
    for (let t = 0; t <= 3_000; t += 10) {
      if (t > 0 && t < 2_000 && t % 100 === 0) m.heard("L"); // data every 100 ms until 2 s
      m.tick();
      c.advance(10);
    }
    assert.equal(sent[0], 0, "the first beacon goes at once");
    assert.deepEqual(
      sent.filter((t) => t > 0 && t < 2_000),
      [],
      "no beacon while traffic proves the hop alive",
    );
    assert.equal(sent[1], 1_900 + 250, "asked 250 ms after the last cell");
    assert.equal(sent[2], 1_900 + 250 + 500, "then every 500 ms");
    const obs = m.observations("L");
    assert.equal(obs.filter((o) => o.kind === "heard").length, 1, "consecutive heard observations coalesce");
  });

  it("paces a link (idle paid circuits) and takes a sooner pace at once", () => {
    const c = clock();
    const sent: number[] = [];
    const m = new Monitor({ now: c.now, effects: { sendBeacon: () => sent.push(c.now()), sendProbe: () => {} } });
    m.linkInUse("L", "r", 30_000);
    for (let t = 0; t < 65_000; t += 50) {
      if (t === 40_000) m.pace("L", 500);
      m.tick();
      c.advance(50);
    }
    assert.deepEqual(sent.slice(0, 3), [0, 30_000, 40_000]);
    assert.equal(sent[3], 40_500);
  });

  it("records the node's own share of a beacon's round trip in Knowledge", () => {
    const c = clock();
    const k = new Knowledge(":memory:");
    const seqs = new Map<string, number>();
    const m: Monitor = new Monitor({
      now: c.now,
      knowledge: k,
      effects: { sendBeacon: (l, seq) => seqs.set(l, seq), sendProbe: () => {} },
      rttOf: (link, rtt): number => (link === "C/1" ? rtt - (m.rtt("C/0") ?? 0) : rtt),
    });
    m.linkInUse("C/0", "first");
    m.linkInUse("C/1", "second");
    m.tick();
    c.advance(10);
    m.echo("C/0", seqs.get("C/0")!);
    c.advance(15);
    m.echo("C/1", seqs.get("C/1")!);
    assert.equal(m.rtt("C/1"), 25);
    assert.equal(k.stats("first").rttMs, 10);
    assert.equal(k.stats("second").rttMs, 15, "25 ms to the second hop, 10 of them to the first");
  });
});

describe("mesh execute", () => {
  const circuits: CircuitView[] = [
    { id: "A1", isolation: "a", path: ["r1", "r2", "r3"], role: "active", pendingStreams: ["s1", "s2"] },
    { id: "A2", isolation: "a", path: ["r4", "r5", "r6"], role: "standby", pendingStreams: [] },
    { id: "B1", isolation: "b", path: ["r7", "r2", "r9"], role: "active", pendingStreams: ["s3"] },
    { id: "C1", isolation: "c", path: ["r4", "r8", "r9"], role: "active", pendingStreams: ["s4"] },
    { id: "C2", isolation: "c", path: ["r1", "r2", "r6"], role: "standby", pendingStreams: [] },
  ];

  it("a frozen hop: standby promoted, pending streams retried, circuit retired, new standby built", () => {
    const d = decide("r2", { state: "frozen", reason: "no echo" }, circuits);
    const a = d.filter((x) => "isolation" in x && x.isolation === "a").map((x) => x.action);
    assert.deepEqual(d[0], { action: "suspect", node: "r2", ms: 600_000, why: "frozen: no echo" });
    const retireA1 = d.findIndex((x) => x.action === "retire" && x.circuit === "A1");
    const lastRetryA = d.findLastIndex((x) => x.action === "retry-stream" && x.from === "A1");
    assert.ok(retireA1 > lastRetryA && lastRetryA > 0, "pending streams are moved before the circuit is retired");
    assert.ok(!d.some((x) => x.action === "close" && x.circuit === "A1"), "a stall may end: its streams are kept");
    assert.deepEqual(a, ["promote-standby", "retry-stream", "retry-stream", "rebuild"]);
    const rebuildA = d.find((x) => x.action === "rebuild" && x.isolation === "a");
    assert.ok(rebuildA && rebuildA.action === "rebuild" && rebuildA.role === "standby" && rebuildA.background);
    assert.deepEqual(
      new Set(rebuildA.avoid),
      new Set(["r2", "r4", "r5", "r6"]),
      "avoids the node and the promoted circuit",
    );
    // Class b has no standby: a foreground rebuild, its pending stream retried on it.
    const b = d
      .filter((x) => JSON.stringify(x).includes('"b"') || JSON.stringify(x).includes("B1"))
      .map((x) => x.action);
    assert.deepEqual(b, ["rebuild", "retry-stream", "retire", "rebuild"]);
    // Class c's active circuit does not use r2, its standby does: only the standby is replaced.
    const cc = d
      .filter((x) => JSON.stringify(x).includes('"c"') || JSON.stringify(x).includes("C"))
      .map((x) => x.action);
    assert.deepEqual(cc, ["close", "rebuild"]);
    assert.ok(!d.some((x) => x.action === "close" && x.circuit === "C1"));
  });

  it("a dead hop closes its circuits, retired ones too, after moving their pending streams", () => {
    const withRetired: CircuitView[] = [
      ...circuits,
      { id: "A0", isolation: "a", path: ["r9", "r2", "r8"], role: "retired", pendingStreams: ["s0"] },
    ];
    const d = decide("r2", { state: "dead", reason: "6 beacons unanswered" }, withRetired);
    for (const id of ["A0", "A1", "B1", "C2"])
      assert.ok(
        d.some((x) => x.action === "close" && x.circuit === id),
        id,
      );
    const retryS0 = d.findIndex((x) => x.action === "retry-stream" && x.stream === "s0");
    assert.ok(retryS0 > 0 && retryS0 < d.findIndex((x) => x.action === "close" && x.circuit === "A0"));
    assert.ok(!d.some((x) => x.action === "retire"));
    // A frozen hop leaves a retired circuit as it is, but still moves its pending streams.
    const f = decide("r2", { state: "frozen", reason: "no echo" }, withRetired);
    assert.ok(!f.some((x) => "circuit" in x && x.circuit === "A0" && x.action !== "promote-standby"));
    assert.ok(f.some((x) => x.action === "retry-stream" && x.stream === "s0"));
  });

  it("a latency spike retires circuits (running streams finish) and suspects the node for less long", () => {
    const d = decide("r2", { state: "spike", reason: "RTT 300 ms" }, circuits);
    assert.equal(d.find((x) => x.action === "suspect")?.action === "suspect" && (d[0] as { ms: number }).ms, 120_000);
    assert.ok(d.some((x) => x.action === "retire" && x.circuit === "A1"));
    assert.ok(!d.some((x) => x.action === "close" && x.circuit === "A1"));
    assert.ok(!d.some((x) => x.action === "retry-stream"), "nothing to retry: the circuit still works");
    assert.deepEqual(decide("r2", { state: "ok", reason: "answering" }, circuits), []);
  });

  it("the executor applies each decision through its effect, logs a line and counts it", () => {
    const calls: string[] = [];
    const effects: ExecuteEffects = {
      suspect: (n) => calls.push(`suspect ${n}`),
      promoteStandby: (i, c) => calls.push(`promote ${i} ${c}`),
      rebuild: (i, role, avoid, bg) => calls.push(`rebuild ${i} ${role} ${[...avoid].sort().join("+")} ${bg}`),
      retryStream: (s, i) => calls.push(`retry ${s} ${i}`),
      retire: (c) => calls.push(`retire ${c}`),
      close: (c) => calls.push(`close ${c}`),
    };
    const lines: string[] = [];
    const counters = new Counters();
    const hooked: string[] = [];
    counters.onIncrement = (name, labels) => hooked.push(`${name}:${labels.action}`);
    const ex = new Executor(effects, { counters, logger: createLogger({ write: (l) => lines.push(l) }) });
    const decisions = ex.onVerdict("r2", { state: "dead", reason: "link closed" }, circuits.slice(0, 2));
    assert.deepEqual(calls, [
      "suspect r2",
      "promote a A2",
      "retry s1 a",
      "retry s2 a",
      "close A1",
      "rebuild a standby r2+r4+r5+r6 true",
    ]);
    assert.equal(lines.length, decisions.length);
    const first = JSON.parse(lines[1] as string) as Record<string, unknown>;
    assert.equal(first.msg, "mesh decision");
    assert.equal(first.action, "promote-standby");
    assert.equal(first.node, "r2");
    assert.equal(counters.get("mesh_decisions", { action: "retry-stream" }), 2);
    assert.equal(hooked.length, decisions.length, "the metrics hook sees every decision");
  });
});

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

describe("mesh execute", () => {
  const circuits: CircuitView[] = [
    { id: "A1", isolation: "a", path: ["r1", "r2", "r3"], role: "active", pendingStreams: ["s1", "s2"] },
    { id: "A2", isolation: "a", path: ["r4", "r5", "r6"], role: "standby", pendingStreams: [] },
    { id: "B1", isolation: "b", path: ["r7", "r2", "r9"], role: "active", pendingStreams: ["s3"] },
    { id: "C1", isolation: "c", path: ["r4", "r8", "r9"], role: "active", pendingStreams: ["s4"] },
    { id: "C2", isolation: "c", path: ["r1", "r2", "r6"], role: "standby", pendingStreams: [] },
  ];

  it("a frozen hop: standby promoted, pending streams retried, circuit closed, new standby built", () => {
    const d = decide("r2", { state: "frozen", reason: "no echo" }, circuits);
    const a = d.filter((x) => "isolation" in x && x.isolation === "a").map((x) => x.action);
    assert.deepEqual(d[0], { action: "suspect", node: "r2", ms: 600_000, why: "frozen: no echo" });
    const closeA1 = d.findIndex((x) => x.action === "close" && x.circuit === "A1");
    const lastRetryA = d.findLastIndex((x) => x.action === "retry-stream" && x.from === "A1");
    assert.ok(closeA1 > lastRetryA && lastRetryA > 0, "pending streams are moved before the circuit closes");
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
    assert.deepEqual(b, ["rebuild", "retry-stream", "close", "rebuild"]);
    // Class c's active circuit does not use r2, its standby does: only the standby is replaced.
    const cc = d
      .filter((x) => JSON.stringify(x).includes('"c"') || JSON.stringify(x).includes("C"))
      .map((x) => x.action);
    assert.deepEqual(cc, ["close", "rebuild"]);
    assert.ok(!d.some((x) => x.action === "close" && x.circuit === "C1"));
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

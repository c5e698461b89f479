/** Analyze (mesh/analyze.ts): dead, frozen, loss and spike from observation sequences with explicit clocks. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  analyzeHop,
  type Baseline,
  DEFAULT_ANALYZE,
  frozenThresholdMs,
  type HopObservation,
  keepRecent,
} from "../../relayer/src/mesh/analyze.ts";
import { judgeCircuits, type JudgedCircuit } from "../../relayer/src/mesh/judge.ts";

const baseline: Baseline = { rttMs: 20, jitterMs: 2, loss: 0 };

/** Beacons every 500 ms from t=0; `rtt(i)` is the round trip of beacon i (undefined: no echo). */
function beacons(n: number, rtt: (i: number) => number | undefined): HopObservation[] {
  const out: HopObservation[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ kind: "beacon", seq: i + 1, at: i * 500 });
    const r = rtt(i);
    if (r !== undefined) out.push({ kind: "echo", seq: i + 1, at: i * 500 + r });
  }
  return out.sort((a, b) => a.at - b.at);
}

describe("mesh analyze", () => {
  it("a healthy hop is ok", () => {
    const v = analyzeHop(
      beacons(20, () => 20),
      baseline,
      20 * 500,
    );
    assert.equal(v.state, "ok");
    assert.equal(v.rttMs, 20);
  });

  it("a closed socket or a failed cell is a dead hop at once", () => {
    const obs = [...beacons(5, () => 20), { kind: "closed" as const, at: 2_345 }];
    assert.deepEqual(analyzeHop(obs, baseline, 2_346).state, "dead");
    assert.equal(analyzeHop(obs, baseline, 2_346).since, 2_345);
    const bad = [...beacons(5, () => 20), { kind: "cell-error" as const, at: 2_400 }];
    assert.equal(analyzeHop(bad, baseline, 2_401).state, "dead");
  });

  it("a hop that stops echoing is frozen past the threshold, then dead after N missed beacons", () => {
    // Answers until beacon 10 (t = 4.5 s), silent from beacon 11 (t = 5.0 s) on.
    const obs = beacons(30, (i) => (i < 10 ? 20 : undefined));
    const threshold = frozenThresholdMs(baseline);
    assert.equal(threshold, 250, "4 x (20 + 4 x 2) = 112 ms, raised to the 250 ms floor");
    const at = (now: number) =>
      analyzeHop(
        obs.filter((o) => o.at <= now),
        baseline,
        now,
      );
    assert.equal(at(5_000 + threshold - 1).state, "ok", "not yet overdue");
    const frozen = at(5_000 + threshold + 1);
    assert.equal(frozen.state, "frozen");
    assert.equal(frozen.since, 5_000, "since the first unanswered beacon");
    // Six beacons overdue: 5.0 … 7.5 s sent, the last overdue at 7.5 s + threshold.
    assert.equal(at(7_500 + threshold - 1).state, "frozen");
    assert.equal(at(7_500 + threshold + 1).state, "dead");
  });

  it("at a slow pace (a paid idle circuit) a hop is dead once its first unanswered beacon waited deadAfterMs", () => {
    // A beacon every 30 s; silent from the third (t = 60 s) on: two overdue beacons, not forty.
    const obs: HopObservation[] = [
      { kind: "beacon", seq: 1, at: 0 },
      { kind: "echo", seq: 1, at: 20 },
      { kind: "beacon", seq: 2, at: 30_000 },
      { kind: "echo", seq: 2, at: 30_020 },
      { kind: "beacon", seq: 3, at: 60_000 },
      { kind: "beacon", seq: 4, at: 60_500 },
    ];
    const options = { ...DEFAULT_ANALYZE, deadMissed: 40, deadAfterMs: 20_000 };
    assert.equal(analyzeHop(obs, baseline, 79_000, options).state, "frozen");
    const dead = analyzeHop(obs, baseline, 80_001, options);
    assert.equal(dead.state, "dead");
    assert.equal(dead.since, 60_000);
    assert.equal(analyzeHop(obs, baseline, 80_001, { ...options, deadAfterMs: undefined }).state, "frozen");
  });

  it("the frozen threshold follows the hop's own RTT within its bounds", () => {
    assert.equal(frozenThresholdMs({ rttMs: 100, jitterMs: 10, loss: 0 }), 560);
    assert.equal(frozenThresholdMs({ rttMs: 400, jitterMs: 50, loss: 0 }), 1_000, "capped");
    assert.equal(frozenThresholdMs({ rttMs: undefined, jitterMs: 0, loss: 0 }), 250, "unknown: the floor");
  });

  it("a latency spike against the node's own baseline is seen; the same RTT on a slow node is not", () => {
    const spiking = beacons(20, (i) => (i < 17 ? 20 : 120));
    const v = analyzeHop(spiking, baseline, 20 * 500);
    assert.equal(v.state, "spike");
    assert.equal(v.rttMs, 120);
    assert.equal(analyzeHop(spiking, { rttMs: 110, jitterMs: 5, loss: 0 }, 20 * 500).state, "ok");
    assert.equal(
      analyzeHop(
        beacons(20, (i) => (i < 17 ? 20 : 45)),
        baseline,
        20 * 500,
      ).state,
      "ok",
      "25 ms more than the baseline is below spikeMinMs",
    );
    assert.equal(
      analyzeHop(spiking, { rttMs: 20, jitterMs: 30, loss: 0 }, 20 * 500).state,
      "ok",
      "100 ms more is within four times the jitter of a hop that always varies this much",
    );
  });

  it("loss shows as late echoes (TCP retransmits) above the baseline's own loss", () => {
    // Every third beacon comes back 400 ms late (past the 250 ms threshold), the rest on time.
    const lossy = beacons(20, (i) => (i % 3 === 0 ? 400 : 20));
    const v = analyzeHop(lossy, baseline, 20 * 500);
    assert.equal(v.state, "loss");
    assert.ok(v.loss! > 0.3 && v.loss! < 0.4, `loss ${v.loss}`);
    assert.equal(
      analyzeHop(lossy, { ...baseline, loss: 0.3 }, 20 * 500).state,
      "ok",
      "a node that is always this lossy",
    );
    assert.equal(
      analyzeHop(
        beacons(20, (i) => (i === 5 ? 400 : 20)),
        baseline,
        20 * 500,
      ).state,
      "ok",
      "one late echo",
    );
  });

  it("traffic heard after a beacon left answers for it: a busy hop whose echo waits in a queue is not frozen", () => {
    // Beacon 11 (t = 5.0 s) has no echo yet, but data from the hop arrived at 5.1 s.
    const obs: HopObservation[] = [...beacons(11, (i) => (i < 10 ? 20 : undefined)), { kind: "heard", at: 5_100 }];
    assert.equal(analyzeHop(obs, baseline, 6_000).state, "ok");
    // Heard before the beacon left proves nothing about it: silence since then is a freeze.
    const before: HopObservation[] = [
      ...beacons(10, () => 20),
      { kind: "heard", at: 4_990 },
      { kind: "beacon", seq: 11, at: 5_000 },
    ];
    assert.equal(analyzeHop(before, baseline, 5_300).state, "frozen");
    // A beacon answered for by traffic and never echoed is not counted as lost either.
    const busy: HopObservation[] = [];
    for (let i = 0; i < 20; i++) {
      busy.push({ kind: "beacon", seq: i + 1, at: i * 500 }, { kind: "heard", at: i * 500 + 10 });
    }
    assert.equal(analyzeHop(busy, baseline, 10_500).state, "ok");
  });

  it("keeps a bounded window of observations", () => {
    const obs = beacons(200, () => 20);
    const kept = keepRecent(obs, 64);
    assert.equal(kept.length, 64);
    assert.deepEqual(kept.at(-1), obs.at(-1));
  });
});

describe("mesh judge: circuits together", () => {
  const base = (rtt: number) => () => ({ rttMs: rtt, jitterMs: 1, loss: 0 });
  /** A circuit whose hop k's beacons echo after rtt(k) (undefined: silent from 5 s on). */
  const circuit = (nodes: string[], rtt: (hop: number) => number | undefined): JudgedCircuit => ({
    nodes,
    pausedFrom: nodes.length,
    observations: (hop) =>
      beacons(20, (i) => {
        const r = rtt(hop);
        return r === undefined && i >= 10 ? undefined : (r ?? 5 * (hop + 1));
      }),
  });

  it("blames the first silent hop of a circuit, not the hops behind it, and stops beaconing those", () => {
    const j = judgeCircuits(
      [circuit(["a", "b", "c"], (hop) => (hop >= 1 ? undefined : 5))],
      base(5),
      10_000,
      DEFAULT_ANALYZE,
    );
    assert.deepEqual([...j.verdicts.keys()], ["b"]);
    assert.equal(j.verdicts.get("b")!.state, "dead");
    assert.deepEqual(j.silentFrom, [2], "c is not beaconed while b is silent");
    assert.ok(!j.seen.has("c"));
  });

  it("a spike counts only when the relay stands out from the others measured now", () => {
    // Every hop 4x its baseline (a busy machine): nobody spikes.
    const busy = ["a", "b", "c", "d"].map((n) => circuit([n], () => 80));
    assert.equal(judgeCircuits(busy, base(20), 10_000, DEFAULT_ANALYZE).verdicts.size, 0);
    // One hop 10x while the rest answer as usual: that one.
    const one = [...["a", "b", "c"].map((n) => circuit([n], () => 20)), circuit(["d"], () => 200)];
    const j = judgeCircuits(one, base(20), 10_000, DEFAULT_ANALYZE);
    assert.deepEqual(
      [...j.verdicts].map(([n, v]) => [n, v.state]),
      [["d", "spike"]],
    );
  });

  it("many relays silent at once is the entry's stall, said as such", () => {
    const all = ["a", "b", "c", "d"].map((n) => circuit([n], (hop) => (n === "d" ? 5 : hop === 0 ? undefined : 5)));
    const j = judgeCircuits(all, base(5), 10_000, DEFAULT_ANALYZE);
    assert.equal(j.verdicts.size, 3);
    assert.equal(j.silentStall, true);
    const single = judgeCircuits(all.slice(2), base(5), 10_000, DEFAULT_ANALYZE);
    assert.equal(single.silentStall, false, "one silent relay of two is that relay");
  });
});

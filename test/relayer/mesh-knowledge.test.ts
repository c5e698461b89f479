/** Knowledge (mesh/knowledge.ts) in a real SQLite file: figures, uptime attestations, restarts. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { healthScore, Knowledge } from "../../relayer/src/mesh/knowledge.ts";

const dir = mkdtempSync(join(tmpdir(), "x0t-knowledge-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("mesh knowledge", () => {
  it("smooths RTT (EWMA 1/8), tracks jitter and loss, and counts probes per epoch", () => {
    const k = new Knowledge(join(dir, "figures.sqlite"));
    k.recordProbe("r1", { at: 0, rttMs: 100, epoch: 7n });
    k.recordProbe("r1", { at: 500, rttMs: 20, epoch: 7n });
    const s = k.stats("r1");
    assert.equal(s.rttMs, 100 + (20 - 100) / 8);
    assert.equal(s.jitterMs, 80 / 16);
    assert.equal(s.loss, 0);
    k.recordProbe("r1", { at: 1_000, rttMs: undefined, epoch: 7n });
    assert.equal(k.stats("r1").loss, 1 / 16);
    assert.equal(k.stats("r1").probes, 3);
    assert.equal(k.stats("r1").answered, 2);
    const up = k.uptime("r1", 7n);
    assert.deepEqual([up.probes, up.answered], [3, 2]);
    assert.match(up.measurements, /^0x[0-9a-f]{64}$/);
    assert.deepEqual(k.uptime("r1", 8n), { probes: 0, answered: 0, measurements: `0x${"0".repeat(64)}` });
    k.close();
  });

  it("commits the measurement log: the same outcomes give the same hash, a different one another", () => {
    const a = new Knowledge(":memory:");
    const b = new Knowledge(":memory:");
    for (const k of [a, b]) {
      k.recordProbe("r", { at: 1, rttMs: 10, epoch: 1n });
      k.recordProbe("r", { at: 2, rttMs: 11, epoch: 1n });
    }
    assert.equal(a.uptime("r", 1n).measurements, b.uptime("r", 1n).measurements);
    b.recordProbe("r", { at: 3, rttMs: undefined, epoch: 1n });
    assert.notEqual(a.uptime("r", 1n).measurements, b.uptime("r", 1n).measurements);
    a.close();
    b.close();
  });

  it("a restart keeps who was bad (a new process opens the same file)", () => {
    const path = join(dir, "restart.sqlite");
    const k = new Knowledge(path);
    for (let i = 0; i < 20; i++) k.recordProbe("good", { at: i * 500, rttMs: 15, epoch: 1n });
    for (let i = 0; i < 20; i++) k.recordProbe("bad", { at: i * 500, rttMs: i % 2 ? undefined : 300, epoch: 1n });
    k.recordFailure("bad", 10_000, "frozen");
    const before = { good: k.stats("good"), bad: k.stats("bad"), uptime: k.uptime("bad", 1n) };
    // No close(): the process is gone as a SIGKILL would leave it; another process reads the file.
    const script = `
      import { Knowledge } from ${JSON.stringify(new URL("../../relayer/src/mesh/knowledge.ts", import.meta.url).href)};
      const k = new Knowledge(${JSON.stringify(path)});
      console.log(JSON.stringify({ good: k.stats("good"), bad: k.stats("bad"), uptime: k.uptime("bad", 1n) }));`;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    assert.equal(child.status, 0, child.stderr);
    const after = JSON.parse(child.stdout) as typeof before;
    assert.deepEqual(after, JSON.parse(JSON.stringify(before)));
    assert.equal(after.bad.failures, 1);
    assert.equal(after.bad.lastFailureKind, "frozen");
    assert.equal(after.bad.probes, 20);
    assert.equal(after.bad.answered, 10);
    assert.ok(healthScore(after.bad, 10_001) < 0.2, "the bad node scores low after the restart");
    assert.ok(healthScore(after.good, 10_001) > 0.99);
    k.close();
  });

  it("a failure weighs fully at once and fades over the failure memory", () => {
    const k = new Knowledge(":memory:");
    k.recordProbe("r", { at: 0, rttMs: 10 });
    k.recordFailure("r", 1_000, "closed");
    const s = k.stats("r");
    assert.equal(s.upSince, undefined, "not up since a failure");
    assert.ok(Math.abs(healthScore(s, 1_000) - 0.1) < 1e-9);
    assert.ok(healthScore(s, 1_000 + 300_000) > 0.5);
    assert.equal(healthScore(s, 1_000 + 600_000), 1);
    assert.equal(healthScore(k.stats("never-seen"), 0), 0.5, "unknown nodes score in the middle");
    k.pruneEpochsBefore(5n);
    k.close();
  });
});

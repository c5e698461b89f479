/**
 * A short run of the chaos harness (bench/chaos.ts): 12 relay processes, one crash and one freeze
 * under steady traffic, against the mesh-driven entry. It asserts behaviour, not timings: the
 * harness says which mode ran, the crash is noticed (its sockets close) and so is the freeze (only
 * the beacons can tell), connections keep succeeding, and no process it started is left behind.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const CHAOS = fileURLToPath(new URL("../../bench/chaos.ts", import.meta.url));

interface KindReport {
  n: number;
  detected: number;
  new_conn_success: number | null;
  new_conns: number;
  mttd_ms: { p50: number | null; p99: number | null };
}

describe("chaos harness (short)", () => {
  it("crashes and freezes relays under traffic and reports per fault kind", { timeout: 180_000 }, async () => {
    const { stdout } = await run(
      process.execPath,
      [
        CHAOS,
        "--relays",
        "12",
        "--faults",
        "1",
        "--kinds",
        "crash,freeze",
        "--rate",
        "10",
        "--downloads",
        "2",
        "--json",
      ],
      { timeout: 170_000, maxBuffer: 16 * 1024 * 1024 },
    );
    const last = stdout.trim().split("\n").at(-1) as string;
    const report = JSON.parse(last) as { mode: string; faults: Record<string, KindReport> };
    assert.match(report.mode, /^(netns|loopback\+shim)$/);
    assert.deepEqual(Object.keys(report.faults), ["crash", "freeze"]);
    const crash = report.faults.crash as KindReport;
    assert.equal(crash.n, 1);
    assert.equal(crash.detected, 1, "a crashed relay on a circuit is noticed (its sockets close)");
    assert.ok(crash.mttd_ms.p50 !== null);
    const freeze = report.faults.freeze as KindReport;
    assert.equal(freeze.detected, 1, "a frozen relay is noticed while it is frozen (beacons)");
    for (const kind of ["crash", "freeze"]) {
      const k = report.faults[kind] as KindReport;
      assert.ok(k.new_conns > 0, `${kind}: connections were attempted during the fault`);
      assert.ok((k.new_conn_success ?? 0) > 0.5, `${kind}: most new connections succeeded (${k.new_conn_success})`);
    }
    assert.match(stdout, /\| crash \| 1 \|/, "the table is printed");
    // Every relay, shim, entry and traffic process the harness started is gone (this checkout's
    // processes only: another checkout on the machine may be running its own harness).
    // A script path of this checkout (the Node binary may be another checkout's, linked).
    const bench = join(resolve(dirname(CHAOS), ".."), "bench/chaos-");
    const left = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.includes(bench));
    assert.deepEqual(left, []);
  });
});

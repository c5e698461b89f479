/**
 * The heap settings a node process chooses for itself (relayer/src/node/heap.ts): a relay's young
 * generation stays at its initial size under allocation, an entry's grows as V8's does, an
 * operator's own flag is left alone, and `x0t relay` holds it before its modules load.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const HEAP = fileURLToPath(new URL("../../relayer/src/node/heap.ts", import.meta.url));
const CLI = fileURLToPath(new URL("../../relayer/src/cli.ts", import.meta.url));
const MiB = 1024 * 1024;

/** Runs `code` in a fresh Node (this one) and returns what it printed as JSON. */
async function inChild(code: string, nodeFlags: string[] = []): Promise<Record<string, unknown>> {
  const script = `
    import { getHeapSpaceStatistics } from "node:v8";
    import { holdYoungGeneration, heapForRole } from ${JSON.stringify(HEAP)};
    const young = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size;
    const churn = () => { const keep = []; for (let i = 0; i < 3e6; i++) { const o = { i, a: [i] }; if (i % 50 === 0) keep.push(o); } return keep.length; };
    ${code}`;
  const { stdout } = await promisify(execFile)(process.execPath, [...nodeFlags, "--input-type=module", "-e", script], {
    env: { ...process.env, NODE_OPTIONS: "" },
    timeout: 60_000,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

test("a relay's young generation stays at its initial size; an entry's grows", async () => {
  const out = await inChild(`
    holdYoungGeneration();
    const role = heapForRole("relay");
    churn();
    const relay = young();
    const entryRole = heapForRole("entry");
    churn(); churn();
    console.log(JSON.stringify({ role, relay, entryRole, entry: young() }));`);
  assert.equal(out.role, "--semi-space-growth-factor=1");
  assert.ok((out.relay as number) <= 2 * MiB, `relay young generation ${out.relay} bytes`);
  assert.equal(out.entryRole, "grows as V8's default");
  assert.ok((out.entry as number) > 2 * MiB, `entry young generation ${out.entry} bytes did not grow`);
});

test("without the hold the young generation grows (the check above can fail)", async () => {
  const out = await inChild(`churn(); churn(); console.log(JSON.stringify({ young: young() }));`);
  assert.ok((out.young as number) > 2 * MiB, `young generation ${out.young} bytes`);
});

test("an operator's own young-generation flag is left alone", async () => {
  const out = await inChild(
    `holdYoungGeneration(); const role = heapForRole("relay"); churn(); churn();
     console.log(JSON.stringify({ role, young: young() }));`,
    ["--max-semi-space-size=4"],
  );
  assert.equal(out.role, "operator's flags");
  assert.ok((out.young as number) > 2 * MiB, `young generation ${out.young} bytes`);
});

/**
 * A module given with --import: prints the young generation's size every 100 ms, so that a test
 * can take the first reading after the node said it is up (all its modules loaded by then).
 */
const WATCH =
  "data:text/javascript," +
  encodeURIComponent(`import { getHeapSpaceStatistics } from "node:v8";
    setInterval(() => console.error(JSON.stringify({ msg: "young", size:
      getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size })), 100).unref();`);

/** Starts `x0t relay` with `nodeOptions`; resolves with its heap log line and its young generation's size once up. */
async function relayHeap(nodeOptions: string): Promise<{ heap: Record<string, unknown>; young: number }> {
  const dir = mkdtempSync(join(tmpdir(), "x0t-heap-"));
  const child = spawn(
    process.execPath,
    ["--import", WATCH, CLI, "relay", "--listen", "127.0.0.1:0", "--keys", join(dir, "r.key"), "--name", "r"],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, X0T_LOG_LEVEL: "info", NODE_OPTIONS: nodeOptions } },
  );
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no heap line and reading after it: ${err}`)), 30_000);
      let err = "";
      let heap: Record<string, unknown> | undefined;
      child.stderr!.on("data", (d: Buffer) => {
        err += d.toString();
        const lines = err.split("\n");
        err = lines.pop() ?? "";
        for (const line of lines) {
          if (!line.startsWith("{")) continue;
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (entry.msg === "heap") heap = entry;
          else if (entry.msg === "young" && heap) {
            clearTimeout(timer);
            resolve({ heap, young: entry.size as number });
          }
        }
      });
      child.once("exit", () => reject(new Error(`relay exited: ${err}`)));
    });
  } finally {
    child.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

test("`x0t relay` holds its young generation before its modules load, and says so", async () => {
  const { heap, young } = await relayHeap("");
  assert.equal(heap.role, "relay");
  assert.equal(heap.young, "--semi-space-growth-factor=1");
  assert.ok(young <= 2 * MiB, `young generation ${young} bytes after start-up`);
});

test("`x0t relay` with the operator's own flag: left alone, and its modules grow the young generation", async () => {
  // The control for the test above: without the hold, loading the node grows it to 16+ MiB.
  const { heap, young } = await relayHeap("--max-semi-space-size=16");
  assert.equal(heap.young, "operator's flags");
  assert.ok(young > 2 * MiB, `young generation ${young} bytes after start-up`);
});

/**
 * A frozen relay (SIGSTOP: its sockets stay open, nothing answers) on the path of a circuit.
 * Without liveness at the circuit layer, every new stream of that SOCKS username waited on the
 * frozen circuit until its 10-minute age limit, and rebuilds could pick the frozen relay again.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { initCrypto } from "../../relayer/src/crypto/keys.ts";
import { startEntry } from "../../relayer/src/node/entry.ts";
import type { EntryNode } from "../../relayer/src/node/entry.ts";
import { type ChildRelay, expectedSha256, spawnRelay, startBlobServer } from "./helpers.ts";

const run = promisify(execFile);

async function curl(socksPort: number, url: string, extra: string[]): Promise<{ ok: boolean; sha256: string }> {
  try {
    const { stdout } = await run("curl", ["-sS", "--fail", "-x", `socks5h://127.0.0.1:${socksPort}`, ...extra, url], {
      encoding: "buffer",
      maxBuffer: 256 * 1024 * 1024,
    });
    return { ok: true, sha256: createHash("sha256").update(stdout).digest("hex") };
  } catch {
    return { ok: false, sha256: "" };
  }
}

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms && !condition(); waited += 50) await new Promise((r) => setTimeout(r, 50));
  return condition();
}

describe("a frozen relay (SIGSTOP of the middle hop)", () => {
  let dir: string;
  let relays: ChildRelay[] = [];
  let entry: EntryNode;
  let blob: Awaited<ReturnType<typeof startBlobServer>>;
  before(async () => {
    await initCrypto();
    dir = mkdtempSync(join(tmpdir(), "x0t-frozen-"));
    relays = await Promise.all(["f0", "f1", "f2", "f3"].map((name) => spawnRelay(dir, name)));
    blob = await startBlobServer();
    entry = await startEntry({ socksPort: 0, hops: 3, directory: () => relays.map((r) => r.entry) });
  });
  after(async () => {
    await entry?.close();
    await Promise.all(relays.map((r) => r.stop()));
    await blob?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    "retires the circuit, avoids the silent relay, and new streams of the username succeed again",
    { timeout: 120_000 },
    async () => {
      const port = entry.socks.address.port;
      const auth = ["-U", "carol:pw", "--max-time", "25"];
      assert.ok(await until(() => entry.circuits().length >= 1, 15_000), "the default circuit was built");
      const known = new Set(entry.circuits());
      const first = await curl(port, `http://127.0.0.1:${blob.port}/blob/1000`, auth);
      assert.equal(first.sha256, expectedSha256(1000));
      const circuit = entry.circuits().find((c) => !known.has(c));
      assert.ok(circuit, "carol's circuit");
      const middle = relays.find((r) => r.entry.port === circuit.path[1]?.port);
      assert.ok(middle);

      // A slow download on the same circuit: once the circuit is found dead it must end (with a
      // reset, so curl reports an error), not hang.
      const size = 64 * 1024 * 1024;
      const download = curl(port, `http://127.0.0.1:${blob.port}/blob/${size}`, [
        "-U",
        "carol:pw",
        "--limit-rate",
        "4M",
        "--max-time",
        "60",
      ]);
      await new Promise((r) => setTimeout(r, 500));
      const builtBefore = new Set(entry.circuits());
      middle.freeze();
      const frozenAt = performance.now();
      let recovered = -1;
      let attempts = 0;
      while (attempts < 4 && recovered < 0) {
        attempts++;
        const got = await curl(port, `http://127.0.0.1:${blob.port}/blob/1000`, auth);
        if (got.ok && got.sha256 === expectedSha256(1000)) recovered = performance.now() - frozenAt;
      }
      const downloaded = await download;
      middle.thaw();
      console.log(
        `# frozen middle relay: new streams of the same username succeed again ${(recovered / 1000).toFixed(2)} s after the freeze (attempt ${attempts}); the running download ${downloaded.ok ? "completed" : "ended with an error"}`,
      );
      assert.ok(recovered >= 0, "a new stream succeeded after the freeze");
      assert.ok(recovered < 15_000, `recovered in ${recovered} ms`);
      assert.equal(circuit.closed, true, "the frozen circuit was closed");
      assert.equal(downloaded.ok, false, "the download on the dead circuit ended with an error");
      const live = entry.circuits().filter((c) => !c.retired && !builtBefore.has(c));
      assert.ok(live.length > 0);
      for (const c of live) assert.ok(!c.path.some((hop) => hop.port === middle.entry.port), "new paths avoid it");
    },
  );
});

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { connectTarget, createExitPolicy } from "../../relayer/src/exit/index.ts";
import type { DirectoryEntry } from "../../relayer/src/node/directory.ts";
import { startEntry } from "../../relayer/src/node/entry.ts";
import type { EntryNode } from "../../relayer/src/node/entry.ts";
import type { RelayNode } from "../../relayer/src/node/relay.ts";
import { expectedSha256, startBlobServer, startRelays } from "./helpers.ts";

const run = promisify(execFile);
const policy = createExitPolicy({ allowPrivateTargets: true });

function directoryOf(relays: RelayNode[]): DirectoryEntry[] {
  return relays.map((r, i) => ({ name: `r${i}`, host: r.host, port: r.port, keys: r.keys, exit: true, region: undefined }));
}

/** curl through the entry; returns the sha256 of the body (or throws with curl's exit code). */
async function curl(socksPort: number, url: string, extra: string[] = []): Promise<{ sha256: string; bytes: number }> {
  const { stdout } = await run("curl", ["-sS", "--fail", "--max-time", "30", "-x", `socks5h://127.0.0.1:${socksPort}`, ...extra, url], {
    encoding: "buffer",
    maxBuffer: 256 * 1024 * 1024,
  });
  return { sha256: createHash("sha256").update(stdout).digest("hex"), bytes: stdout.length };
}

for (const hops of [1, 2, 3]) {
  describe(`curl through the SOCKS5 entry over ${hops} hop(s)`, () => {
    let relays: RelayNode[];
    let entry: EntryNode;
    let blob: Awaited<ReturnType<typeof startBlobServer>>;
    before(async () => {
      relays = await startRelays(3, { openTarget: (t, signal) => connectTarget(t, policy, { signal }) });
      blob = await startBlobServer();
      entry = await startEntry({ socksPort: 0, hops, directory: () => directoryOf(relays) });
    });
    after(async () => {
      await entry.close();
      await Promise.all(relays.map((r) => r.close()));
      await blob.close();
    });

    it("delivers a 100 MiB body byte-identical", async () => {
      const size = 100 * 1024 * 1024;
      const got = await curl(entry.socks.address.port, `http://127.0.0.1:${blob.port}/blob/${size}`);
      assert.equal(got.bytes, size);
      assert.equal(got.sha256, expectedSha256(size));
      assert.equal(entry.circuits()[0]?.path.length, hops);
    });
  });
}

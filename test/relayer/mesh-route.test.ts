/**
 * Route choice in the entry (planPath over the directory and Knowledge), with real relays and
 * sockets on loopback: every circuit keeps its hops in distinct regions and operators, a rule
 * that cannot be met fails the stream instead of being relaxed, and what the mesh learned of a
 * relay (SQLite) outlives a restart of the entry and keeps steering paths away from it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generateStaticKeys, initCrypto, type StaticKeys } from "../../relayer/src/crypto/keys.ts";
import { healthScore } from "../../relayer/src/mesh/knowledge.ts";
import { nodeId } from "../../relayer/src/node/circuit-pool.ts";
import type { DirectoryEntry } from "../../relayer/src/node/directory.ts";
import { type EntryNode, startEntry } from "../../relayer/src/node/entry.ts";
import { type RelayNode, startRelay } from "../../relayer/src/node/relay.ts";
import { StreamOpenError, StreamReason } from "../../relayer/src/wire/reasons.ts";
import { loopbackTarget, startRelays } from "./helpers.ts";

async function until(condition: () => boolean, ms = 30_000): Promise<boolean> {
  for (let waited = 0; waited < ms && !condition(); waited += 50) await new Promise((r) => setTimeout(r, 50));
  return condition();
}

const op = (n: number) => `0x${n.toString(16).padStart(40, "0")}` as const;

function entryOf(r: RelayNode, name: string, extra: Partial<DirectoryEntry> = {}): DirectoryEntry {
  return { name, host: r.host, port: r.port, keys: r.keys, exit: true, region: undefined, ...extra };
}

describe("route choice in the entry", () => {
  let echo: Server;
  let target: { type: "ipv4"; host: string; port: number };
  before(async () => {
    await initCrypto();
    echo = createServer((s) => {
      s.on("error", () => {});
      s.once("data", () => s.end("pong\n"));
    });
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    target = { type: "ipv4", host: "127.0.0.1", port: (echo.address() as AddressInfo).port };
  });
  after(() => new Promise((r) => echo.close(r)));

  it("keeps the hops of every circuit in distinct regions and operators, and does not relax the rules", async () => {
    const relays = await startRelays(6);
    // Two relays per region and per operator: only some triples are diverse.
    const regions = ["DE", "DE", "FR", "FR", "NL", "NL"];
    const operators = [op(1), op(2), op(2), op(3), op(3), op(1)];
    const directory = relays.map((r, i) =>
      entryOf(r, `d${i}`, { region: regions[i], operator: operators[i] as `0x${string}` }),
    );
    const entry = await startEntry({ socksPort: 0, hops: 3, directory: () => directory, diversity: { prefix: false } });
    const strict = await startEntry({ socksPort: 0, hops: 3, directory: () => directory, diversity: { prefix: true } });
    try {
      for (let i = 0; i < 10; i++) (await entry.openStream(target, `class-${i}`)).destroy();
      const circuits = entry.pool.circuits();
      assert.ok(circuits.length >= 10);
      for (const pc of circuits) {
        assert.equal(
          new Set(pc.path.map((r) => r.region)).size,
          3,
          `${pc.id}: regions ${pc.path.map((r) => r.region)}`,
        );
        assert.equal(new Set(pc.path.map((r) => r.operator)).size, 3, `${pc.id}: one operator twice`);
      }
      // Every relay is on 127.0.0.1: with the prefix rule on, no path exists, and none is forced.
      await assert.rejects(strict.openStream(target, "x"), (error: unknown) => {
        assert.ok(error instanceof StreamOpenError);
        assert.equal(error.reason, StreamReason.networkUnreachable);
        assert.match(error.message, /prefix/);
        return true;
      });
      assert.equal(strict.pool.circuits().length, 0);
    } finally {
      await entry.close();
      await strict.close();
      await Promise.all(relays.map((r) => r.close()));
    }
  });

  it("a restart keeps its knowledge: a relay that failed stays out of new paths", async () => {
    const dir = mkdtempSync(join(tmpdir(), "x0t-route-"));
    const file = join(dir, "knowledge.sqlite");
    const keys: StaticKeys[] = Array.from({ length: 4 }, () => generateStaticKeys());
    const start = (i: number, port = 0) =>
      startRelay({ host: "127.0.0.1", port, keys: keys[i]!, openTarget: loopbackTarget });
    const relays = await Promise.all(keys.map((_, i) => start(i)));
    const directory = () => relays.map((r, i) => entryOf(r, `k${i}`));
    const ids = relays.map((r) => nodeId(r));
    let first: EntryNode | undefined = await startEntry({
      socksPort: 0,
      hops: 2,
      directory,
      diversity: { prefix: false },
      knowledge: file,
    });
    let second: EntryNode | undefined;
    try {
      const a = first;
      assert.ok(
        await until(() => ids.every((id) => a.mesh.knowledge.stats(id).answered > 0)),
        "every relay measured (latency probes)",
      );
      (await a.openStream(target, "a")).destroy();
      const active = a.pool.circuits().find((pc) => pc.isolation === "a" && pc.role === "active")!;
      const bad = active.nodes[0]!;
      const index = ids.indexOf(bad);
      // The first hop dies: its link closes under the circuit.
      await relays[index]!.close();
      assert.ok(await until(() => a.mesh.knowledge.stats(bad).failures > 0), "the failure is recorded");
      await a.close();
      first = undefined;
      // The relay comes back on the same address with the same keys; a new entry process starts.
      relays[index] = await start(index, relays[index]!.port);
      const b = await startEntry({ socksPort: 0, hops: 2, directory, diversity: { prefix: false }, knowledge: file });
      second = b;
      const stats = b.mesh.knowledge.stats(bad);
      assert.ok(stats.failures >= 1, "the new entry knows the relay failed");
      assert.equal(stats.lastFailureKind, "closed");
      assert.ok(healthScore(stats, Date.now()) < 0.5);
      assert.equal(b.pool.suspects().size, 0, "no suspicion was carried over: only Knowledge steers");
      for (let i = 0; i < 8; i++) (await b.openStream(target, `b-${i}`)).destroy();
      const circuits = b.pool.circuits();
      assert.ok(circuits.length >= 8);
      for (const pc of circuits) assert.ok(!pc.nodes.includes(bad), `${pc.id} avoids the relay that failed`);
    } finally {
      await first?.close();
      await second?.close();
      await Promise.all(relays.map((r) => r.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

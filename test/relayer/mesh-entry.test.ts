/**
 * The mesh loop in the entry (node/entry-mesh.ts, node/circuit-pool.ts) with real relay processes
 * on loopback: a frozen relay (SIGSTOP) is found by the beacons, its class's standby takes over —
 * a stream that was opening on the frozen circuit is opened again there and succeeds — and the
 * relay is avoided afterwards; a crashed relay in the middle of a circuit is found by connecting to
 * the hops. Bounded waits only; no assertion on how long anything took.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initCrypto } from "../../relayer/src/crypto/keys.ts";
import { nodeId, type PooledCircuit } from "../../relayer/src/node/circuit-pool.ts";
import { type EntryNode, startEntry } from "../../relayer/src/node/entry.ts";
import { type ChildRelay, ping, spawnRelay } from "./helpers.ts";

async function until(condition: () => boolean, ms = 30_000): Promise<boolean> {
  for (let waited = 0; waited < ms && !condition(); waited += 50) await new Promise((r) => setTimeout(r, 50));
  return condition();
}

describe("mesh in the entry: standby, frozen and crashed relays (relay processes)", () => {
  let dir: string;
  let relays: ChildRelay[] = [];
  let entry: EntryNode;
  let echo: Server;
  let target: { type: "ipv4"; host: string; port: number };
  const byNode = (id: string) => relays.find((r) => nodeId(r.entry) === id);
  const classCircuits = (isolation: string) => entry.pool.circuits().filter((pc) => pc.isolation === isolation);
  const ready = (isolation: string) => {
    const mine = classCircuits(isolation).filter((pc) => !pc.circuit.retired);
    const active = mine.find((pc) => pc.role === "active");
    const standby = mine.find((pc) => pc.role === "standby");
    return active && standby ? { active, standby } : undefined;
  };

  before(async () => {
    await initCrypto();
    dir = mkdtempSync(join(tmpdir(), "x0t-mesh-entry-"));
    relays = await Promise.all(["m0", "m1", "m2", "m3", "m4", "m5", "m6"].map((name) => spawnRelay(dir, name)));
    echo = createServer((s) => {
      s.on("error", () => {});
      s.once("data", () => s.end("pong\n"));
    });
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    target = { type: "ipv4", host: "127.0.0.1", port: (echo.address() as AddressInfo).port };
    entry = await startEntry({
      socksPort: 0,
      hops: 2,
      directory: () => relays.map((r) => r.entry),
      diversity: { prefix: false },
      knowledge: join(dir, "mesh.sqlite"),
      // Only the mesh may move a stream here: the stream-open timeout fallback stays out of the way.
      streamOpenTimeoutMs: 60_000,
    });
  });
  after(async () => {
    await entry?.close();
    await Promise.all(relays.map((r) => r.stop()));
    await new Promise((r) => echo?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("a frozen relay: the standby takes over, the opening stream is moved and succeeds, the relay is avoided", async () => {
    assert.equal(await ping(await entry.openStream(target, "alice")), "pong\n");
    assert.ok(await until(() => ready("alice") !== undefined), "alice has an active and a standby circuit");
    const { active, standby } = ready("alice")!;
    assert.ok(!active.nodes.some((n) => standby.nodes.includes(n)), "the standby shares no relay with the active");
    const victim = byNode(active.nodes[0] as string)!;
    const movedBefore = entry.mesh.counters.get("mesh_decisions", { action: "retry-stream" });
    const promotedBefore = entry.mesh.counters.get("mesh_decisions", { action: "promote-standby" });
    // On a loaded machine the standby may have been replaced since (a relay of it looked slow for
    // a moment): whichever standby the class has when the relay freezes is the one to take over.
    const standbys = new Set(
      classCircuits("alice")
        .filter((pc) => pc.role === "standby")
        .map((pc) => pc.id),
    );
    assert.ok(standbys.size > 0);

    victim.freeze();
    // Opened at once: it goes to the frozen circuit, which cannot answer until the mesh moves it.
    const stream = entry.openStream(target, "alice");
    assert.equal(await ping(await stream), "pong\n", "the stream opening on the frozen circuit succeeded");

    assert.equal(active.circuit.retired, true, "the frozen circuit takes no new streams");
    const serving = await entry.pool.circuitFor("alice");
    assert.ok(standbys.has(serving.id), "new streams of alice go to the standby it had at the freeze");
    assert.equal(serving.role, "active", "the standby was promoted");
    assert.ok(!serving.nodes.includes(nodeId(victim.entry)));
    assert.ok(entry.mesh.counters.get("mesh_decisions", { action: "retry-stream" }) > movedBefore, "moved");
    assert.ok(entry.mesh.counters.get("mesh_decisions", { action: "promote-standby" }) > promotedBefore);
    assert.ok(entry.pool.suspects().has(nodeId(victim.entry)), "the frozen relay is suspected");
    // At once when it was the first hop of every circuit that saw it silent; when it was behind
    // another hop in one of them (paths are drawn), once a direct check of it has failed too
    // (probeTimeoutMs, 2 s): suspected meanwhile, as asserted above.
    assert.ok(
      await until(() => entry.mesh.knowledge.stats(nodeId(victim.entry)).failures >= 1, 10_000),
      "and its failure is in Knowledge",
    );

    // Avoided: the class gets a new standby, and nothing built from now on uses the frozen relay.
    const known = new Set(entry.pool.circuits().map((pc) => pc.id));
    assert.ok(await until(() => ready("alice") !== undefined), "alice has a standby again");
    for (let i = 0; i < 4; i++) assert.equal(await ping(await entry.openStream(target, `after-${i}`)), "pong\n");
    const built: PooledCircuit[] = entry.pool.circuits().filter((pc) => !known.has(pc.id));
    assert.ok(built.length >= 4);
    for (const pc of built) assert.ok(!pc.nodes.includes(nodeId(victim.entry)), `${pc.id} avoids the frozen relay`);
    victim.thaw();
  });

  it("a crashed middle relay: found by connecting to the hops, suspected, and streams go on", async () => {
    assert.equal(await ping(await entry.openStream(target, "bob")), "pong\n");
    assert.ok(await until(() => ready("bob") !== undefined));
    const { active } = ready("bob")!;
    // The exit of a 2-hop circuit: the first hop loses its link and destroys the circuit with
    // "link closed", which does not say who died.
    const victim = byNode(active.nodes[1] as string)!;
    await victim.stop();
    assert.ok(
      await until(() => entry.pool.suspects().has(nodeId(victim.entry))),
      "the crashed relay is suspected (it refused the connection)",
    );
    assert.equal(active.circuit.closed, true);
    const first = nodeId(active.path[0]!);
    assert.ok(!entry.pool.suspects().has(first), "the relay that reported the lost link is not blamed");
    assert.equal(await ping(await entry.openStream(target, "bob")), "pong\n");
  });
});

/**
 * A relay that drops or corrupts what it passes on (it still answers for itself: its own beacons,
 * EXTENDs to it) must be the one blamed, not the honest relays behind it whose beacons it swallows
 * or the honest relays on the circuits it breaks. Real
 * relays on loopback (in this process, so that one can be made hostile through its tamper hook),
 * the real entry with its mesh; bounded waits only, no assertion on how long anything took.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { nodeId } from "../../relayer/src/node/circuit-pool.ts";
import type { DirectoryEntry } from "../../relayer/src/node/directory.ts";
import { type EntryNode, startEntry } from "../../relayer/src/node/entry.ts";
import type { RelayNode } from "../../relayer/src/node/relay.ts";
import { ping, startRelays } from "./helpers.ts";

describe("mesh blame: a relay that drops or corrupts what it passes on", () => {
  let relays: RelayNode[] = [];
  let directory: DirectoryEntry[] = [];
  let entry: EntryNode;
  let echo: Server;
  let dir: string;
  let mode: "off" | "drop" | "corrupt" = "off";

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "x0t-mesh-blame-"));
    // Relay 0 is the hostile one; every relay may be an exit (loopback targets).
    const hostile = await startRelays(1, {
      tamperForward: (body) => {
        if (mode === "drop") return false;
        if (mode === "corrupt") body[body.length - 1]! ^= 1;
      },
    });
    relays = [...hostile, ...(await startRelays(4))];
    directory = relays.map((r, i) => ({
      name: `b${i}`,
      host: r.host,
      port: r.port,
      keys: r.keys,
      exit: true,
      region: ["DE", "FR", "NL", "SE", "US"][i],
    }));
    echo = createServer((s) => {
      s.on("error", () => {});
      s.once("data", () => s.end("pong\n"));
    });
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  });
  /** A fresh entry (its own Knowledge): each hostile mode is found from scratch. */
  const freshEntry = async (name: string) => {
    await entry?.close();
    entry = await startEntry({
      socksPort: 0,
      hops: 2,
      directory: () => directory,
      diversity: { prefix: false },
      knowledge: join(dir, `${name}.sqlite`),
    });
  };
  after(async () => {
    await entry?.close();
    await Promise.all(relays.map((r) => r.close()));
    await new Promise((r) => echo?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  for (const hostileMode of ["drop", "corrupt"] as const)
    it(`suspects the relay that ${hostileMode}s for the full term and leaves the honest relays in use`, async () => {
      await freshEntry(hostileMode);
      const target = { type: "ipv4" as const, host: "127.0.0.1", port: (echo.address() as AddressInfo).port };
      const hostile = nodeId(directory[0]!);
      mode = hostileMode;
      try {
        // New classes keep building circuits; those with the hostile relay before the last hop break.
        let ok = 0;
        // (Provisional suspicions come and go meanwhile: the verdict is its failure in Knowledge.)
        const convicted = () => entry.mesh.knowledge.stats(hostile).failures > 0;
        for (let i = 0; i < 300 && !convicted(); i++) {
          await new Promise((r) => setTimeout(r, 100)); // bounded: 300 opens over a minute or more
          const opened = await Promise.race([
            entry.openStream(target, `user-${i}`).then(ping, () => "failed"),
            new Promise<string>((r) => setTimeout(() => r("timed out"), 15_000)),
          ]);
          if (opened === "pong\n") ok++;
        }
        assert.ok(convicted(), `the relay that ${hostileMode}s has a failure in Knowledge`);
        assert.ok(ok > 0, "streams went on meanwhile");
        // Provisional suspicions of honest relays (5 s at most) have lapsed, and were not renewed;
        // the hostile relay's is for the full term.
        await new Promise((r) => setTimeout(r, 5_500));
        assert.ok(entry.pool.suspects().has(hostile), `the relay that ${hostileMode}s is still suspected`);
        const honest = directory.slice(1).map(nodeId);
        assert.deepEqual(
          honest.filter((n) => entry.pool.suspects().has(n)).map((n) => entry.pool.nameOf(n)),
          [],
          "no honest relay stays suspected",
        );
        for (const n of honest)
          assert.equal(entry.mesh.knowledge.stats(n).failures, 0, `no failure recorded for ${entry.pool.nameOf(n)}`);
        // And the network works around it.
        for (let i = 0; i < 3; i++) assert.equal(await ping(await entry.openStream(target, `after-${i}`)), "pong\n");
      } finally {
        mode = "off";
      }
    });
});

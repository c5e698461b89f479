/**
 * Closing an entry while its mesh still has latency probes in flight: the answers that come back
 * afterwards must not touch Knowledge's closed database (that was an unhandled rejection, which
 * ends a Node process). Real sockets: the relays' port accepts and never answers a handshake.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { initCrypto } from "../../relayer/src/crypto/keys.ts";
import { startEntry } from "../../relayer/src/node/entry.ts";
import { identity, relayEntry } from "./mesh-fixtures.ts";

describe("closing an entry with mesh probes in flight", () => {
  it("drops the answers that arrive after close, with no unhandled rejection", async () => {
    await initCrypto();
    const dir = mkdtempSync(join(tmpdir(), "x0t-mesh-close-"));
    const sockets = new Set<Socket>();
    const hole = createServer((s) => (sockets.add(s), s.on("error", () => {})));
    await new Promise<void>((r) => hole.listen(0, "127.0.0.1", r));
    const port = (hole.address() as AddressInfo).port;
    const rejections: unknown[] = [];
    const onRejection = (e: unknown) => rejections.push(e);
    process.on("unhandledRejection", onRejection);
    try {
      const ids = await Promise.all([0, 1, 2].map(() => identity()));
      const relays = ids.map((id, i) => ({
        ...relayEntry(`r${i}`, "127.0.0.1", { region: ["US", "FR", "DE"][i], exit: true }),
        port,
        keys: { x25519: id.keys.x25519.publicKey, mlkem: id.keys.mlkemPublic, keysHash: id.keys.keysHash },
      }));
      // The directory is empty at start-up (no circuit is built) and then names the relays, as a
      // folder filled after the entry started does: only the mesh's latency probes go to them.
      let reads = 0;
      const entry = await startEntry({
        socksPort: 0,
        directory: () => (reads++ < 3 ? [] : relays),
        knowledge: join(dir, "mesh.sqlite"),
        probeTimeoutMs: 1_000,
      });
      // Every relay of the directory gets its first latency probe within 2 s.
      for (let i = 0; i < 60 && entry.mesh.counters.get("mesh_probes_sent") < 3; i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.ok(entry.mesh.counters.get("mesh_probes_sent") >= 1, "latency probes went out");
      await entry.close();
      // The probes time out after close (1 s) and their answers are dropped.
      await new Promise((r) => setTimeout(r, 1_500));
      assert.deepEqual(rejections, []);
    } finally {
      process.off("unhandledRejection", onRejection);
      for (const s of sockets) s.destroy();
      await new Promise((r) => hole.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

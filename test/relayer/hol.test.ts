/**
 * Head-of-line blocking across circuits. A relay used to stop reading its incoming link when the
 * next link was full: with one relay frozen and 32 upload streams on circuit X, circuit Y sharing
 * the first link could not open a stream (20 s in the report). Now each circuit queues its own cells
 * (bounded by its streams' windows) and the link keeps being read.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ClientCircuit } from "../../relayer/src/circuit/client.ts";
import { CircuitMux } from "../../relayer/src/circuit/mux.ts";
import type { CircuitStream } from "../../relayer/src/circuit/stream.ts";
import { Link } from "../../relayer/src/link/link.ts";
import { DestroyReason } from "../../relayer/src/wire/cell.ts";
import type { RelayNode } from "../../relayer/src/node/relay.ts";
import { type ChildRelay, hopsOf, spawnRelay, startRelays } from "./helpers.ts";

describe("head-of-line blocking across circuits of one link", () => {
  let dir: string;
  let frozen: ChildRelay;
  let relays: RelayNode[];
  let sink: Server;
  let sinkPort: number;
  const sinkSockets = new Set<Socket>();
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "x0t-hol-"));
    frozen = await spawnRelay(dir, "b");
    relays = await startRelays(3);
    // Reads and discards everything: the uploads' destination.
    sink = createServer((socket) => {
      sinkSockets.add(socket);
      socket.once("close", () => sinkSockets.delete(socket));
      socket.on("error", () => {});
      socket.resume();
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
    sinkPort = (sink.address() as AddressInfo).port;
  });
  after(async () => {
    await frozen.stop();
    await Promise.all(relays.map((r) => r.close()));
    for (const socket of sinkSockets) socket.destroy();
    await new Promise((r) => sink.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("circuit Y opens streams while circuit X's next hop is frozen under 32 uploads", { timeout: 60_000 }, async () => {
    const [a, c, d] = hopsOf(relays).map((h) => h);
    assert.ok(a && c && d);
    const link = await Link.connect(a.host, a.port, a.keys);
    const mux = new CircuitMux(link);
    const x = await ClientCircuit.build(mux, [a, frozen.entry, c]);
    const y = await ClientCircuit.build(mux, [a, d, c]);
    const target = { type: "ipv4" as const, host: "127.0.0.1", port: sinkPort };
    const uploads: CircuitStream[] = [];
    for (let i = 0; i < 32; i++) uploads.push(await x.openStream(target));
    frozen.freeze();
    const chunk = Buffer.alloc(2 * 1024 * 1024, 7);
    for (const s of uploads) {
      s.on("error", () => {});
      s.write(chunk); // 32 cells each go out at once (the stream window), the rest waits for SENDME
    }
    await new Promise((r) => setTimeout(r, 1_500)); // let X's cells pile up at the first relay
    const started = performance.now();
    const opened: string[] = [];
    for (let i = 0; i < 3; i++) {
      try {
        const stream = await y.openStream(target, AbortSignal.timeout(10_000));
        stream.on("error", () => {});
        stream.end("hello");
        opened.push("ok");
      } catch (error) {
        opened.push((error as Error).message);
      }
    }
    const queued = relays[0]!.core.queuedCells();
    console.log(
      `# circuit Y opened ${opened.filter((o) => o === "ok").length}/3 streams in ${Math.round(performance.now() - started)} ms while X was stuck; ${queued} cells of X queued at the first relay; X ${x.closed ? "destroyed" : "open"}`,
    );
    frozen.thaw();
    assert.deepEqual(opened, ["ok", "ok", "ok"]);
    x.close();
    y.close();
    link.close();
  });
  for (const [what, limits] of [
    ["its own queue bound", { circuitQueueCells: 64 }],
    ["the relay-wide queue budget (out-of-memory handling)", { queueBudgetCells: 100 }],
  ] as const) {
    it(`destroys the circuit that overruns ${what}, with a resource-limit reason`, { timeout: 60_000 }, async () => {
      const small = await startRelays(2, { limits });
      try {
        const [a, c] = hopsOf(small);
        assert.ok(a && c);
        const link = await Link.connect(a.host, a.port, a.keys);
        const mux = new CircuitMux(link);
        const x = await ClientCircuit.build(mux, [a, frozen.entry, c]);
        const y = await ClientCircuit.build(mux, [a, c]);
        const reason = new Promise<number>((resolve) => x.onClose((error) => resolve(error.reason)));
        const target = { type: "ipv4" as const, host: "127.0.0.1", port: sinkPort };
        const uploads: CircuitStream[] = [];
        for (let i = 0; i < 32; i++) uploads.push(await x.openStream(target));
        frozen.freeze();
        for (const s of uploads) {
          s.on("error", () => {});
          s.write(Buffer.alloc(1024 * 1024, 1));
        }
        const got = await Promise.race([reason, new Promise<number>((r) => setTimeout(() => r(-1), 15_000))]);
        frozen.thaw();
        assert.equal(got, DestroyReason.resourceLimit);
        const stream = await y.openStream(target, AbortSignal.timeout(10_000));
        stream.destroy();
        assert.equal(y.closed, false, "the other circuit on the link is untouched");
        link.close();
      } finally {
        frozen.thaw();
        await Promise.all(small.map((r) => r.close()));
      }
    });
  }
});

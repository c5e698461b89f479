import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, connect } from "node:net";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { ClientCircuit, CircuitError } from "../../relayer/src/circuit/client.ts";
import { CircuitMux } from "../../relayer/src/circuit/mux.ts";
import { connectTarget, createExitPolicy } from "../../relayer/src/exit/index.ts";
import { Link } from "../../relayer/src/link/link.ts";
import type { RelayNode } from "../../relayer/src/node/relay.ts";
import { DestroyReason } from "../../relayer/src/wire/cell.ts";
import { StreamOpenError, StreamReason } from "../../relayer/src/wire/reasons.ts";
import { expectedSha256, hopsOf, startBlobServer, startRelays } from "./helpers.ts";

async function buildCircuit(relays: RelayNode[]) {
  const hops = hopsOf(relays);
  const first = hops[0]!;
  const link = await Link.connect(first.host, first.port, first.keys);
  const mux = new CircuitMux(link);
  const circuit = await ClientCircuit.build(mux, hops);
  return { circuit, link };
}

/** Sends an HTTP/1.0 GET through `circuit` and returns the sha256 of the body and its length. */
async function fetchThrough(circuit: ClientCircuit, port: number, path: string) {
  const stream = await circuit.openStream({ type: "ipv4", host: "127.0.0.1", port });
  // No half-close: Node's HTTP server cuts a response short when the client half-closes.
  stream.write(`GET ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`);
  const h = createHash("sha256");
  let head = Buffer.alloc(0);
  let bodyBytes = 0;
  let inBody = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (inBody) {
      h.update(chunk);
      bodyBytes += chunk.length;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    if (end >= 0) {
      inBody = true;
      const body = head.subarray(end + 4);
      h.update(body);
      bodyBytes += body.length;
    }
  }
  return { sha256: h.digest("hex"), bytes: bodyBytes };
}

describe("circuits", () => {
  let relays: RelayNode[];
  let blob: Awaited<ReturnType<typeof startBlobServer>>;
  before(async () => {
    relays = await startRelays(3);
    blob = await startBlobServer();
  });
  after(async () => {
    await Promise.all(relays.map((r) => r.close()));
    await blob.close();
  });

  for (const n of [1, 2, 3]) {
    it(`carries a 4 MiB body byte-identical over ${n} hop(s)`, async () => {
      const { circuit, link } = await buildCircuit(relays.slice(0, n));
      const size = 4 * 1024 * 1024 + 7;
      const got = await fetchThrough(circuit, blob.port, `/blob/${size}`);
      assert.equal(got.bytes, size);
      assert.equal(got.sha256, expectedSha256(size));
      circuit.close();
      link.close();
    });
  }

  it("carries optimistic data sent right behind BEGIN (the exit holds it until it is connected)", async () => {
    const { circuit, link } = await buildCircuit(relays);
    const size = 300_000;
    const stream = await circuit.openStream(
      { type: "ipv4", host: "127.0.0.1", port: blob.port },
      undefined,
      Buffer.from(`GET /blob/${size} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`),
    );
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    const all = Buffer.concat(chunks);
    const body = all.subarray(all.indexOf("\r\n\r\n") + 4);
    assert.equal(body.length, size);
    assert.equal(createHash("sha256").update(body).digest("hex"), expectedSha256(size));
    circuit.close();
    link.close();
  });

  it("reports a refused target with the exit's reason", async () => {
    const { circuit, link } = await buildCircuit(relays);
    await assert.rejects(
      circuit.openStream({ type: "ipv4", host: "127.0.0.1", port: 1 }),
      (e: unknown) => e instanceof StreamOpenError,
    );
    circuit.close();
    link.close();
  });
});

describe("optimistic data to a target the exit policy refuses", () => {
  it("fails with 'not allowed', the target sees no connection and no byte, the circuit lives on", async () => {
    const relays = await startRelays(3, {
      openTarget: (t, signal) => connectTarget(t, createExitPolicy({}), { signal }),
    });
    let connections = 0;
    const target = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
    const port = (target.address() as AddressInfo).port;
    const { circuit, link } = await buildCircuit(relays);
    for (let i = 0; i < 3; i++)
      await assert.rejects(
        circuit.openStream(
          { type: "ipv4", host: "127.0.0.1", port },
          undefined,
          Buffer.from("POST / HTTP/1.0\r\n\r\n"),
        ),
        (e: unknown) => e instanceof StreamOpenError && e.reason === StreamReason.notAllowed,
      );
    assert.equal(connections, 0);
    assert.equal(circuit.closed, false);
    circuit.close();
    link.close();
    await new Promise<void>((resolve) => target.close(() => resolve()));
    await Promise.all(relays.map((r) => r.close()));
  });
});

// Browsers and scanners give up on streams all the time: the client sends END and forgets the
// stream while the exit's CONNECTED (or DATA, or END) is already on its way. That late cell once
// counted as a protocol violation and destroyed the shared circuit with every stream on it.
describe("cancelled streams on a shared circuit", () => {
  it(
    "ignore late CONNECTED/DATA/END, and a large download on the same circuit completes intact",
    { timeout: 60_000 },
    async () => {
      const relays = await startRelays(3);
      const blob = await startBlobServer();
      const { circuit, link } = await buildCircuit(relays);
      const size = 48 * 1024 * 1024;
      const download = fetchThrough(circuit, blob.port, `/blob/${size}`);
      let cancelled = 0;
      let opened = 0;
      const cancelOne = async (i: number) => {
        try {
          const stream = await circuit.openStream(
            { type: "ipv4", host: "127.0.0.1", port: blob.port },
            AbortSignal.timeout(i % 9), // 0..8 ms: around the time a CONNECTED takes to come back
          );
          opened++;
          stream.on("error", () => {});
          stream.write("GET /blob/1000000 HTTP/1.0\r\n\r\n");
          setTimeout(() => stream.destroy(), i % 5); // and cancel with DATA in flight
        } catch {
          cancelled++;
        }
      };
      for (let batch = 0; batch < 30 && !circuit.closed; batch++) {
        await Promise.all([0, 1, 2, 3].map((k) => cancelOne(batch * 4 + k)));
      }
      const got = await download;
      console.log(`# ${cancelled} streams cancelled while opening, ${opened} opened then destroyed`);
      assert.equal(circuit.closed, false, "the circuit survived the cancels");
      assert.equal(got.bytes, size);
      assert.equal(got.sha256, expectedSha256(size));
      const after = await fetchThrough(circuit, blob.port, "/blob/1000");
      assert.equal(after.sha256, expectedSha256(1000));
      link.close();
      await Promise.all(relays.map((r) => r.close()));
      await blob.close();
    },
  );
});

describe("a relay that tampers with a cell", () => {
  it("makes the next hop destroy the circuit with an authentication error", async () => {
    let armed = false;
    const [bad] = await startRelays(1, {
      tamperForward: (body) => {
        if (armed && body.length > 0) body[body.length >> 1]! ^= 0x01;
      },
    });
    const rest = await startRelays(2);
    const blob = await startBlobServer();
    const { circuit, link } = await buildCircuit([bad!, ...rest]);
    const closed = new Promise<CircuitError>((resolve) => circuit.onClose(resolve));
    armed = true;
    await assert.rejects(circuit.openStream({ type: "ipv4", host: "127.0.0.1", port: blob.port }));
    const error = await closed;
    assert.equal(error.reason, DestroyReason.authentication);
    assert.equal(circuit.closed, true);
    // The tampering relay and the others stay up: a fresh circuit through honest relays works.
    const again = await buildCircuit(rest);
    const got = await fetchThrough(again.circuit, blob.port, "/blob/1000");
    assert.equal(got.sha256, expectedSha256(1000));
    again.link.close();
    link.close();
    await Promise.all([bad!, ...rest].map((r) => r.close()));
    await blob.close();
    assert.ok(StreamReason.done === 0);
  });
});

/**
 * An on-path attacker between the client and the first relay: forwards whole link frames and,
 * when armed, flips one bit of the next client → relay frame at `offset(frameLength)` (an offset
 * into the frame after its 4-byte length).
 */
async function startFlipper(target: RelayNode) {
  let armAt: ((length: number) => number) | undefined;
  let flipped = 0;
  const server = createServer((client) => {
    const upstream = connect({ host: target.host, port: target.port });
    upstream.pipe(client);
    let held = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      held = Buffer.concat([held, chunk]);
      for (let guard = 0; guard < 10_000 && held.length >= 4; guard++) {
        const length = held.readUInt32BE(0);
        if (held.length < 4 + length) break;
        const frame = Buffer.from(held.subarray(0, 4 + length));
        held = held.subarray(4 + length);
        if (armAt && length < 2000) {
          frame[4 + armAt(length)]! ^= 0x10;
          armAt = undefined;
          flipped++;
        }
        upstream.write(frame);
      }
    });
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    arm: (offset: (length: number) => number) => (armAt = offset),
    flipped: () => flipped,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("an on-path attacker that flips one bit on a link", () => {
  it("in a RELAY body: the hop's onion layer fails, that circuit is destroyed for authentication, the link stays", async () => {
    const relays = await startRelays(3);
    const blob = await startBlobServer();
    const flipper = await startFlipper(relays[0]!);
    const hops = hopsOf(relays);
    const link = await Link.connect("127.0.0.1", flipper.port, hops[0]!.keys);
    const mux = new CircuitMux(link);
    const victim = await ClientCircuit.build(mux, hops);
    const closed = new Promise<CircuitError>((resolve) => victim.onClose(resolve));
    // Frame = sealed header (21 bytes) | onion body: flip a bit in the middle of the body (BEGIN).
    flipper.arm((length) => 21 + ((length - 21) >> 1));
    await assert.rejects(victim.openStream({ type: "ipv4", host: "127.0.0.1", port: blob.port }));
    const error = await closed;
    assert.equal(flipper.flipped(), 1);
    assert.equal(error.reason, DestroyReason.authentication);
    // Only that circuit: the link carries a fresh circuit whose download arrives intact.
    assert.equal(link.isClosed, false);
    const again = await ClientCircuit.build(mux, hops);
    const got = await fetchThrough(again, blob.port, "/blob/300000");
    assert.equal(got.sha256, expectedSha256(300_000));
    link.close();
    await flipper.close();
    await Promise.all(relays.map((r) => r.close()));
    await blob.close();
  });

  it("in a sealed cell header or its tag: the link fails authentication and closes", async () => {
    const relays = await startRelays(1);
    const flipper = await startFlipper(relays[0]!);
    const hops = hopsOf(relays);
    for (const at of [2, 12, 20]) {
      const link = await Link.connect("127.0.0.1", flipper.port, hops[0]!.keys);
      const circuit = await ClientCircuit.build(new CircuitMux(link), hops);
      const closed = new Promise<CircuitError>((resolve) => circuit.onClose(resolve));
      flipper.arm(() => at);
      void circuit.probe(5000);
      const error = await closed;
      assert.equal(error.reason, DestroyReason.linkClosed, `flip at header byte ${at}`);
      assert.equal(link.isClosed, true);
    }
    // The relay is still up for everyone else.
    const link = await Link.connect(relays[0]!.host, relays[0]!.port, hops[0]!.keys);
    const circuit = await ClientCircuit.build(new CircuitMux(link), hops);
    assert.equal(await circuit.probe(5000), -1);
    link.close();
    await flipper.close();
    await relays[0]!.close();
  });
});

/**
 * A relay EXTENDs only to relays it knows (mesh/known-relays.ts backed by a descriptor folder):
 * an EXTEND to an unknown address, or to a known relay's keys at another address, is answered
 * EXTEND_FAILED without a connection being tried; a relay whose descriptor appears later is
 * reachable. Real relays and sockets on loopback.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CircuitError, ClientCircuit } from "../../relayer/src/circuit/client.ts";
import type { HopInfo } from "../../relayer/src/circuit/client.ts";
import { CircuitMux } from "../../relayer/src/circuit/mux.ts";
import { generateStaticKeys, publicKeysOf } from "../../relayer/src/crypto/keys.ts";
import { Link } from "../../relayer/src/link/link.ts";
import { knownRelayCheck } from "../../relayer/src/mesh/known-relays.ts";
import { descriptorOf, readDirectory } from "../../relayer/src/node/directory.ts";
import { registryRelays } from "../../relayer/src/node/run-mesh.ts";
import type { RelayNode } from "../../relayer/src/node/relay.ts";
import { hopsOf, startRelays } from "./helpers.ts";

async function build(hops: HopInfo[]): Promise<ClientCircuit> {
  const link = await Link.connect(hops[0]!.host, hops[0]!.port, hops[0]!.keys);
  return ClientCircuit.build(new CircuitMux(link), hops, { stepTimeoutMs: 10_000 });
}

const publish = (dir: string, name: string, r: RelayNode) =>
  writeFileSync(
    join(dir, `${name}.json`),
    JSON.stringify(descriptorOf({ name, host: r.host, port: r.port, exit: true, keys: r.keys })),
  );

describe("EXTEND only to known relays", () => {
  let dir: string;
  let guard: RelayNode; // knows only the relays of `dir`
  let known: RelayNode;
  let late: RelayNode;
  let probe: Server;
  let probed = 0;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "x0t-known-"));
    [known, late] = (await startRelays(2)) as [RelayNode, RelayNode];
    publish(dir, "known", known);
    [guard] = (await startRelays(1, {
      isKnownRelay: knownRelayCheck([() => readDirectory(dir)], { refreshMs: 0 }),
    })) as [RelayNode];
    // A port that is not a relay: the refused EXTENDs must never connect to it.
    probe = createServer((s) => {
      probed++;
      s.destroy();
    });
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  });
  after(async () => {
    for (const r of [guard, known, late]) await r?.close();
    await new Promise((r) => probe.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("extends to a relay its directory names", async () => {
    const circuit = await build(hopsOf([guard, known]));
    assert.equal(circuit.path.length, 2);
    circuit.close();
  });

  it("refuses an EXTEND to an unknown address without connecting to it", async () => {
    const port = (probe.address() as AddressInfo).port;
    const stranger: HopInfo = { host: "127.0.0.1", port, keys: publicKeysOf(generateStaticKeys()) };
    await assert.rejects(build([...hopsOf([guard]), stranger]), (error: unknown) => {
      assert.ok(error instanceof CircuitError);
      assert.match(error.message, /hop 1 could not extend \(reason 2\)/);
      assert.equal(error.hop, 1, "the hop that could not be added");
      return true;
    });
    // A known relay's keys at another address: refused too (the endpoint is part of what is known).
    const moved: HopInfo = { host: "127.0.0.1", port, keys: known.keys };
    await assert.rejects(build([...hopsOf([guard]), moved]), /could not extend \(reason 2\)/);
    assert.equal(probed, 0, "no connection was tried to the port");
    // The relay is unharmed: it still extends to the relay it knows.
    (await build(hopsOf([guard, known]))).close();
  });

  it("knows a relay once its descriptor appears", async () => {
    await assert.rejects(build(hopsOf([guard, late])), /could not extend \(reason 2\)/);
    publish(dir, "late", late);
    const circuit = await build(hopsOf([guard, late]));
    assert.equal(circuit.path.length, 2);
    circuit.close();
  });
});

describe("known relays: re-reading the sources", () => {
  it("reads at most once per refresh interval, keeps the last set when a source fails", () => {
    let t = 0;
    let reads = 0;
    let fail = false;
    const hash = Buffer.alloc(32, 7);
    const check = knownRelayCheck(
      [
        () => {
          reads++;
          if (fail) throw new Error("half-written descriptor");
          return [{ host: "10.0.0.1", port: 9001, keys: { keysHash: hash } }];
        },
      ],
      { refreshMs: 1_000, now: () => t },
    );
    for (let i = 0; i < 1_000; i++) assert.equal(check("10.9.9.9", 9001, hash), false);
    assert.equal(reads, 1, "a flood of unknown EXTENDs costs one read");
    assert.equal(check("[10.0.0.1]", 9001, hash), true, "brackets and case do not matter");
    assert.equal(check("10.0.0.1", 9002, hash), false, "the port is part of what is known");
    fail = true;
    t = 1_000;
    assert.equal(check("10.0.0.1", 9001, hash), true, "a failed read keeps the relays read before");
    assert.equal(reads, 2);
  });
});

describe("known relays from the registry", () => {
  it("only active records whose endpoint is an IP address (the contract takes any string)", () => {
    const op = (n: number) => `0x${n.toString(16).padStart(40, "0")}` as const;
    const hash = (n: number) => `0x${n.toString(16).padStart(64, "0")}` as const;
    const record = (n: number, endpoint: string, active = true) => ({
      operator: op(n),
      signer: op(100 + n),
      keysHash: hash(n),
      endpoint,
      region: "DE",
      active,
      pinned: true,
    });
    const known = registryRelays([
      record(1, "10.0.0.1:9001"),
      record(2, "[2001:db8::1]:9001"),
      record(3, "relay.example:9001"),
      record(4, "0.0.0.0:9001"),
      record(5, "10.0.0.5:9001", false),
    ]);
    assert.deepEqual(
      known.map((r) => `${r.host}:${r.port}`),
      ["10.0.0.1:9001", "2001:db8::1:9001"],
    );
    const check = knownRelayCheck([() => known]);
    assert.equal(check("10.0.0.1", 9001, Buffer.from(hash(1).slice(2), "hex")), true);
    assert.equal(check("relay.example", 9001, Buffer.from(hash(3).slice(2), "hex")), false);
  });
});

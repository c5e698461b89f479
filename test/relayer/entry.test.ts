import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { connect } from "node:net";
import { promisify } from "node:util";
import { ClientCircuit } from "../../relayer/src/circuit/client.ts";
import { CircuitMux } from "../../relayer/src/circuit/mux.ts";
import { connectTarget, createExitPolicy } from "../../relayer/src/exit/index.ts";
import { Link } from "../../relayer/src/link/link.ts";
import type { DirectoryEntry } from "../../relayer/src/node/directory.ts";
import { startEntry } from "../../relayer/src/node/entry.ts";
import type { EntryNode } from "../../relayer/src/node/entry.ts";
import type { RelayNode } from "../../relayer/src/node/relay.ts";
import type { Target } from "../../relayer/src/wire/cell.ts";
import { expectedSha256, hopsOf, startBlobServer, startRelays } from "./helpers.ts";

const run = promisify(execFile);
const policy = createExitPolicy({ allowPrivateTargets: true });

function directoryOf(relays: RelayNode[]): DirectoryEntry[] {
  return relays.map((r, i) => ({
    name: `r${i}`,
    host: r.host,
    port: r.port,
    keys: r.keys,
    exit: true,
    region: undefined,
  }));
}

/** curl through the entry; returns the sha256 of the body (or throws with curl's exit code). */
async function curl(socksPort: number, url: string, extra: string[] = []): Promise<{ sha256: string; bytes: number }> {
  const { stdout } = await run(
    "curl",
    ["-sS", "--fail", "--max-time", "30", "-x", `socks5h://127.0.0.1:${socksPort}`, ...extra, url],
    {
      encoding: "buffer",
      maxBuffer: 256 * 1024 * 1024,
    },
  );
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

describe("the entry reports the exit's verdict and copes with load", () => {
  let relays: RelayNode[];
  let entry: EntryNode;
  let blob: Awaited<ReturnType<typeof startBlobServer>>;
  before(async () => {
    relays = await startRelays(3, { openTarget: (t, signal) => connectTarget(t, policy, { signal }) });
    blob = await startBlobServer();
    entry = await startEntry({ socksPort: 0, hops: 3, directory: () => directoryOf(relays) });
  });
  after(async () => {
    await entry.close();
    await Promise.all(relays.map((r) => r.close()));
    await blob.close();
  });

  /** curl's exit code for a URL that fails (97 = proxy handshake, with the reply code in stderr). */
  async function curlFails(url: string): Promise<string> {
    try {
      await curl(entry.socks.address.port, url);
    } catch (error) {
      const e = error as { stderr?: Buffer; code?: number; message: string };
      return `${e.code} ${e.stderr?.toString() ?? ""} ${e.message}`;
    }
    throw new Error("curl succeeded");
  }

  // curl prints the SOCKS5 reply code: "Can't complete SOCKS5 connection to <host>. (<REP>)".
  it("answers REP 5 'connection refused' for a target that refuses", async () => {
    const stderr = await curlFails("http://127.0.0.1:1/");
    assert.match(stderr, /SOCKS5 connection to 127\.0\.0\.1\. \(5\)/);
  });

  it("answers REP 4 'host unreachable' for a name that does not resolve", async () => {
    const stderr = await curlFails("http://no-such-host.invalid/");
    assert.match(stderr, /SOCKS5 connection to no-such-host\.invalid\. \(4\)/);
  });

  /**
   * A client that does not wait for replies (optimistic data, as Tor Browser sends): greeting,
   * CONNECT and its request in one write. Returns every byte it got until the entry closed.
   */
  async function optimistic(port: number, request: string): Promise<Buffer> {
    const socket = connect(entry.socks.address.port, "127.0.0.1");
    socket.write(
      Buffer.concat([
        Buffer.of(5, 1, 0),
        Buffer.of(5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff),
        Buffer.from(request),
      ]),
    );
    const chunks: Buffer[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d));
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    return Buffer.concat(chunks);
  }

  it("serves a client that sends its request with its SOCKS5 request (optimistic data)", async () => {
    const size = 200_000;
    const got = await optimistic(blob.port, `GET /blob/${size} HTTP/1.0\r\n\r\n`);
    assert.deepEqual([...got.subarray(0, 4)], [5, 0, 5, 0]); // no-auth chosen, then success
    const http = got.subarray(2 + 10);
    const body = http.subarray(http.indexOf("\r\n\r\n") + 4);
    assert.equal(body.length, size);
    assert.equal(createHash("sha256").update(body).digest("hex"), expectedSha256(size));
  });

  it("still answers an optimistic client's refused request with the exit's REP, and nothing else", async () => {
    const got = await optimistic(1, "GET / HTTP/1.0\r\n\r\n");
    assert.deepEqual([...got.subarray(0, 4)], [5, 0, 5, 5]); // REP 5: connection refused
    assert.equal(got.length, 2 + 10);
  });

  it("carries 200 parallel streams on one circuit, each byte-identical", async () => {
    const size = 64 * 1024 + 3;
    const results = await Promise.all(
      Array.from({ length: 200 }, () => curl(entry.socks.address.port, `http://127.0.0.1:${blob.port}/blob/${size}`)),
    );
    for (const r of results) assert.equal(r.sha256, expectedSha256(size));
    assert.equal(entry.circuits().length, 1);
  });

  it("isolates streams with different SOCKS usernames or passwords onto different circuits", async () => {
    await curl(entry.socks.address.port, `http://127.0.0.1:${blob.port}/blob/10`, ["-U", "alice:x"]);
    await curl(entry.socks.address.port, `http://127.0.0.1:${blob.port}/blob/10`, ["-U", "bob:x"]);
    assert.equal(entry.circuits().length, 3);
    // The password isolates too (browsers change it for "new identity"), as in Tor.
    await curl(entry.socks.address.port, `http://127.0.0.1:${blob.port}/blob/10`, ["-U", "alice:other"]);
    assert.equal(entry.circuits().length, 4);
    await curl(entry.socks.address.port, `http://127.0.0.1:${blob.port}/blob/10`, ["-U", "alice:x"]);
    assert.equal(entry.circuits().length, 4);
  });

  it("fails over: when a relay of the circuit dies, the next request gets a fresh circuit", async () => {
    const before = entry.circuits().find((c) => c.path.length === 3 && !c.closed);
    assert.ok(before);
    const [victim] = relays.filter((r) => r.port === before.path[1]!.port);
    await victim!.close();
    const spare = await startRelays(1, { openTarget: (t, signal) => connectTarget(t, policy, { signal }) });
    relays = [...relays.filter((r) => r !== victim), ...spare];
    const started = performance.now();
    const got = await curl(entry.socks.address.port, `http://127.0.0.1:${blob.port}/blob/1000`);
    assert.equal(got.sha256, expectedSha256(1000));
    assert.ok(performance.now() - started < 30_000);
    assert.equal(before.closed, true);
  });
});

describe("idle resources are released", () => {
  it("closes retired circuits once their streams are done, and builds fresh ones", async () => {
    const relays = await startRelays(3, { openTarget: (t, signal) => connectTarget(t, policy, { signal }) });
    const blob = await startBlobServer();
    const entry = await startEntry({
      socksPort: 0,
      hops: 3,
      maxCircuitAgeMs: 300,
      directory: () => directoryOf(relays),
    });
    await curl(entry.socks.address.port, `http://127.0.0.1:${blob.port}/blob/100`);
    const first = entry.circuits()[0]!;
    for (let i = 0; i < 50 && !first.closed; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(first.closed, true, "the retired circuit was closed");
    await curl(entry.socks.address.port, `http://127.0.0.1:${blob.port}/blob/100`);
    assert.notEqual(entry.circuits()[0], first);
    await entry.close();
    await Promise.all(relays.map((r) => r.close()));
    await blob.close();
  });

  it("relays close idle exit streams and idle links", async () => {
    const relays = await startRelays(1, {
      openTarget: (t, signal) => connectTarget(t, policy, { signal }),
      limits: { streamIdleMs: 200, linkIdleMs: 300 },
    });
    const blob = await startBlobServer();
    const hops = hopsOf(relays);
    const link = await Link.connect(hops[0]!.host, hops[0]!.port, hops[0]!.keys);
    const circuit = await ClientCircuit.build(new CircuitMux(link), hops);
    const stream = await circuit.openStream({ type: "ipv4", host: "127.0.0.1", port: blob.port });
    stream.on("error", () => {});
    stream.write("GET /hold HTTP/1.0\r\n\r\n"); // the server answers headers, then nothing
    const closed = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      stream.once("close", () => (clearTimeout(timer), resolve(true)));
    });
    assert.equal(closed, true, "the idle stream was closed by the exit");
    circuit.close();
    for (let i = 0; i < 60 && !link.isClosed; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(link.isClosed, true, "the link without circuits was closed by the relay");
    await Promise.all(relays.map((r) => r.close()));
    await blob.close();
  });
});

describe("a slow target is not a frozen relay", () => {
  it("keeps the circuit when a stream open times out but every hop answers the probe", async () => {
    const slow = async (target: Target, signal: AbortSignal) => {
      await new Promise((r) => setTimeout(r, 900));
      return connectTarget(target, policy, { signal });
    };
    const relays = await startRelays(3, { openTarget: slow });
    const blob = await startBlobServer();
    const entry = await startEntry({
      socksPort: 0,
      hops: 3,
      streamOpenTimeoutMs: 200,
      probeTimeoutMs: 2_000,
      directory: () => directoryOf(relays),
    });
    try {
      const stream = await entry.openStream({ type: "ipv4", host: "127.0.0.1", port: blob.port }, "slow");
      stream.destroy();
      const mine = entry.circuits().filter((c) => !c.closed);
      assert.ok(mine.length >= 1);
      assert.ok(
        mine.every((c) => !c.retired),
        "the probe found every hop alive, so no circuit stays retired",
      );
    } finally {
      await entry.close();
      await Promise.all(relays.map((r) => r.close()));
      await blob.close();
    }
  });
});

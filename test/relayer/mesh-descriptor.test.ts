/**
 * Signed descriptors under the offline trust model (bootstrap configuration lists the signers),
 * and bootstrap nodes gossiping them over HTTP on loopback. The registry-backed checks run on the
 * in-process EVM in test/contracts/mesh-registry.test.ts.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { privateKeyToAccount, generatePrivateKey } from "viem/accounts";
import {
  descriptorDomain,
  MAX_DESCRIPTOR_JSON_BYTES,
  type SignedNodeDescriptor,
} from "../../relayer/src/mesh/descriptor.ts";
import { bootstrapAnchor, DropReason, type TrustAnchor, verifyDescriptor } from "../../relayer/src/mesh/verify.ts";
import {
  DescriptorStore,
  type GossipNode,
  MAX_BODY,
  MAX_DESCRIPTORS,
  pullDescriptors,
  pushDescriptors,
  REQUEST_TIMEOUT_MS,
  startGossipNode,
} from "../../relayer/src/mesh/gossip.ts";
import { startDescriptorSources } from "../../relayer/src/mesh/sources.ts";
import { DESCRIPTOR_DROP_REASONS } from "../../relayer/src/metrics/index.ts";
import { parseDescriptor } from "../../relayer/src/node/directory.ts";
import { identity, type Identity, sign, TEST_DOMAIN } from "./mesh-fixtures.ts";

const NOW = 1_800_000_000;

describe("mesh descriptors (bootstrap trust)", () => {
  let a: Identity;
  let b: Identity;
  let anchors: TrustAnchor[];
  before(async () => {
    a = await identity();
    b = await identity();
    anchors = [bootstrapAnchor([{ signer: a.signer.address }, { signer: b.signer.address, operator: b.operator }])];
  });
  const verify = (value: unknown, now = NOW) => verifyDescriptor(value, { domain: TEST_DOMAIN, anchors, now });

  it("accepts a descriptor signed by a listed signer and produces the directory entry", async () => {
    const d = await sign(a, NOW, { nickname: "alpha", endpoint: "[2001:db8::7]:443", region: "FR" });
    const v = await verify(d);
    assert.ok(v.ok, v.ok ? "" : `${v.reason}: ${v.detail}`);
    assert.equal(v.node.anchor, "bootstrap");
    assert.equal(v.node.signer, a.signer.address);
    const e = v.node.entry;
    assert.deepEqual(
      [e.name, e.host, e.port, e.region, e.exit, e.operator],
      ["alpha", "2001:db8::7", 443, "FR", true, a.operator.toLowerCase()],
    );
    assert.ok(Buffer.from(e.keys.keysHash).equals(a.keys.keysHash));
    assert.equal(e.bandwidth, 10_000_000);
    // The same entry as the local-folder path makes from an unsigned descriptor.
    const local = parseDescriptor(
      {
        name: "alpha",
        host: e.host,
        port: 443,
        x25519: d.x25519,
        mlkem: d.mlkem,
        keysHash: d.keysHash,
        exit: true,
        region: "FR",
        operator: a.operator,
      },
      "local",
    );
    Object.assign(local, { bandwidth: undefined, notAfter: undefined });
    assert.deepEqual({ ...local, keys: null }, { ...e, keys: null, bandwidth: undefined, notAfter: undefined });
    assert.equal(e.notAfter, NOW + 3600);
  });

  it("refuses forged, tampered, expired, premature, unlisted, mis-keyed and malformed descriptors, naming why", async () => {
    const good = await sign(a, NOW);
    const cases: [string, unknown, DropReason, number?][] = [
      // Signed by a key that is not a's signer, claiming a's operator.
      ["forged", { ...(await sign({ ...b, operator: a.operator }, NOW)) }, DropReason.unknownSigner],
      ["tampered endpoint", { ...good, endpoint: "127.0.0.1:9999" }, DropReason.unknownSigner],
      ["exit flag flipped", { ...good, exit: false }, DropReason.unknownSigner],
      [
        "other chain",
        await sign(a, NOW, {}, descriptorDomain(1, TEST_DOMAIN.verifyingContract)),
        DropReason.unknownSigner,
      ],
      ["expired", await sign(a, NOW - 7_200, { notAfter: NOW - 3_600 }), DropReason.expired],
      ["not yet valid", await sign(a, NOW, { notBefore: NOW + 3_600, notAfter: NOW + 7_200 }), DropReason.notYetValid],
      ["too long", await sign(a, NOW, { notAfter: NOW + 30 * 86_400 }), DropReason.validityTooLong],
      ["b for another operator", await sign({ ...b, operator: a.operator }, NOW), DropReason.unknownSigner],
      ["keys that do not hash", { ...good, x25519: b.keys.x25519.publicKey.toString("hex") }, DropReason.badKeys],
      ["garbage signature", { ...good, signature: "0x1234" }, DropReason.badSignature],
      ["no signature field", { ...good, signature: undefined }, DropReason.malformed],
      ["upper-case endpoint", { ...good, endpoint: "Relay.example:1" }, DropReason.malformed],
      ["not an object", "hello", DropReason.malformed],
    ];
    for (const [name, value, reason] of cases) {
      const v = await verify(value);
      assert.equal(v.ok, false, `${name} must be refused`);
      if (!v.ok) assert.equal(v.reason, reason, `${name}: ${v.detail}`);
    }
    const endpoints: [string, RegExp][] = [
      ["relay.example:9001", /"endpoint" must be an IP address/],
      ["0.0.0.0:9001", /not the wildcard/],
      ["[::]:9001", /not the wildcard/],
      ["[::ffff:0.0.0.0]:9001", /not the wildcard/],
      ["[10.0.0.1]:9001", /a\.b\.c\.d:port for IPv4/],
    ];
    for (const [endpoint, why] of endpoints) {
      const v = await verify({ ...good, endpoint });
      assert.ok(!v.ok && v.reason === DropReason.malformed && why.test(v.detail), `${endpoint}: ${JSON.stringify(v)}`);
      await assert.rejects(sign(a, NOW, { endpoint }), why, `${endpoint} is not signed either`);
    }
    assert.equal((await verify(good)).ok, true, "the untouched original still verifies");
    assert.equal((await verify(good, NOW + 3_600 + 61)).ok, false, "and expires");
  });

  it("with no anchor able to answer and a registry configured, the reason is trust-unavailable", async () => {
    const registryDown: TrustAnchor = { kind: "registry", lookup: () => ({ kind: "unavailable" }) };
    const v = await verifyDescriptor(await sign(b, NOW), { domain: TEST_DOMAIN, anchors: [registryDown], now: NOW });
    assert.equal(!v.ok && v.reason, DropReason.trustUnavailable);
    const both = await verifyDescriptor(await sign(a, NOW), {
      domain: TEST_DOMAIN,
      anchors: [registryDown, ...anchors],
      now: NOW,
    });
    assert.ok(both.ok && both.node.anchor === "bootstrap", "the bootstrap list answers while the registry cannot");
  });
});

describe("mesh gossip (bootstrap nodes on loopback)", () => {
  const ids: Identity[] = [];
  const descriptors: SignedNodeDescriptor[] = [];
  let nodes: GossipNode[] = [];
  const now = () => NOW * 1000;
  const store = (anchors: TrustAnchor[]) =>
    new DescriptorStore({ now, context: (t) => ({ domain: TEST_DOMAIN, anchors, now: t }) });
  before(async () => {
    for (let i = 0; i < 4; i++) ids.push(await identity());
    for (const [i, id] of ids.entries())
      descriptors.push(await sign(id, NOW, { nickname: `g${i}`, endpoint: `10.${i}.0.1:9001` }));
  });
  after(async () => {
    for (const n of nodes) await n.close();
  });

  it("a relay publishes to one bootstrap node, gossip carries it to the other, an entry pulls it; forgeries go nowhere", async () => {
    // The first three signers are listed; the fourth is not.
    const anchors = [bootstrapAnchor(ids.slice(0, 3).map((id) => ({ signer: id.signer.address })))];
    const first = await startGossipNode({ host: "127.0.0.1", port: 0, store: store(anchors), intervalMs: 0 });
    const second = await startGossipNode({
      host: "127.0.0.1",
      port: 0,
      store: store(anchors),
      peers: [first.url],
      intervalMs: 0,
    });
    nodes = [first, second];
    const pushed = await pushDescriptors(first.url, [
      descriptors[0]!,
      descriptors[1]!,
      descriptors[3]!, // unlisted signer
      { ...descriptors[2]!, endpoint: "10.9.9.9:9001" }, // tampered in transit
    ]);
    assert.equal(pushed.accepted, 2);
    assert.deepEqual(pushed.dropped, { "unknown-signer": 2 });
    await pushDescriptors(second.url, [descriptors[2]!]);
    assert.deepEqual(await second.gossipOnce(), { ok: 1, failed: 0 });
    for (const n of nodes)
      assert.deepEqual(
        n.store
          .entries()
          .map((e) => e.name)
          .sort(),
        ["g0", "g1", "g2"],
        `${n.url} holds every good descriptor`,
      );
    // An entry (its own store and anchors) pulls from a bootstrap node.
    const entryStore = store(anchors);
    const pulled = await pullDescriptors(entryStore, first.url);
    assert.equal(pulled.accepted, 3);
    assert.deepEqual(
      entryStore
        .entries()
        .map((e) => e.host)
        .sort(),
      ["10.0.0.1", "10.1.0.1", "10.2.0.1"],
    );
    assert.equal(first.store.dropped["unknown-signer"], 2, "drops are counted by reason");
    // Pulled again and revalidated, nothing is verified twice: a signature is recovered once per
    // descriptor, and revalidation only judges validity and trust again.
    assert.equal(entryStore.signaturesChecked, 3);
    assert.equal((await pullDescriptors(entryStore, first.url)).accepted, 3);
    assert.equal(await entryStore.revalidate(), 0);
    assert.equal(entryStore.signaturesChecked, 3, "no signature recovered again");
    // A cached verdict is never reused for a different descriptor: one changed field is checked afresh.
    const tampered = { ...descriptors[0]!, nickname: "evil" };
    const v = await entryStore.offer(tampered, "test");
    assert.equal(!v.ok && v.reason, DropReason.unknownSigner);
    assert.equal(entryStore.signaturesChecked, 4);
  });

  it("keeps the newest descriptor of an operator and withdraws expired ones on revalidation", async () => {
    const anchors = [bootstrapAnchor([{ signer: ids[0]!.signer.address }])];
    let t = NOW * 1000;
    const s = new DescriptorStore({ now: () => t, context: (sec) => ({ domain: TEST_DOMAIN, anchors, now: sec }) });
    const older = await sign(ids[0]!, NOW, { endpoint: "10.0.0.1:1", notBefore: NOW - 100, notAfter: NOW + 100 });
    const newer = await sign(ids[0]!, NOW, { endpoint: "10.0.0.1:2", notBefore: NOW - 50, notAfter: NOW + 100 });
    await s.offer(newer, "test");
    await s.offer(older, "test");
    assert.deepEqual(
      s.entries().map((e) => e.port),
      [2],
    );
    assert.equal(s.dropped.stale, 1);
    t = (NOW + 200) * 1000;
    assert.equal(s.entries().length, 0, "an expired descriptor is not served");
    assert.equal(await s.revalidate(), 1);
    assert.equal(s.size, 0);
  });

  it("refuses an oversized or malformed body without harm", async () => {
    const [first] = nodes;
    const res = await fetch(new URL("/v1/descriptors", first!.url), { method: "POST", body: "{not json" });
    assert.equal(res.status, 400);
    const big = await fetch(new URL("/v1/descriptors", first!.url), {
      method: "POST",
      body: "[" + "1,".repeat(3_000_000) + "1]",
    }).catch(() => undefined);
    assert.ok(!big || big.status === 400);
    assert.equal((await fetch(new URL("/v1/descriptors", first!.url))).status, 200, "still serving");
  });
});

describe("mesh store: a signer trusted without an operator pin holds one operator", () => {
  let nodes: GossipNode[] = [];
  after(async () => {
    for (const n of nodes) await n.close();
  });

  it("cannot take over or evict another operator, nor mint operators; stale and full are drops", async () => {
    const [a, b, c, d] = [await identity(), await identity(), await identity(), await identity()];
    // a, b and d are listed without an operator; c is pinned to its operator.
    const anchors = [
      bootstrapAnchor([
        { signer: a.signer.address },
        { signer: b.signer.address },
        { signer: c.signer.address, operator: c.operator },
        { signer: d.signer.address },
      ]),
    ];
    const node = await startGossipNode({
      host: "127.0.0.1",
      port: 0,
      store: new DescriptorStore({ now: () => NOW * 1000, context: (t) => ({ domain: TEST_DOMAIN, anchors, now: t }) }),
      intervalMs: 0,
    });
    nodes = [node];
    const held = () =>
      node.store
        .entries()
        .map((e) => `${e.operator}@${e.host}`)
        .sort();
    const bOwn = await sign(b, NOW, { endpoint: "10.2.0.1:9001", notBefore: NOW - 10 });
    assert.deepEqual(await pushDescriptors(node.url, [bOwn]), { accepted: 1, dropped: {} });

    // a signs b's operator, dated later: b is neither evicted nor replaced.
    const takeover = await sign({ ...a, operator: b.operator }, NOW, {
      endpoint: "10.1.0.1:9001",
      notBefore: NOW + 50,
    });
    assert.deepEqual(await pushDescriptors(node.url, [takeover]), { accepted: 0, dropped: { "operator-held": 1 } });
    assert.deepEqual(held(), [`${b.operator.toLowerCase()}@10.2.0.1`]);
    // b publishing again: the same descriptor is accepted (held), an older one is a stale drop.
    assert.deepEqual(await pushDescriptors(node.url, [bOwn]), { accepted: 1, dropped: {} });
    const bOlder = await sign(b, NOW, { endpoint: "10.2.0.1:9001", notBefore: NOW - 20 });
    assert.deepEqual(await pushDescriptors(node.url, [bOlder]), { accepted: 0, dropped: { stale: 1 } });

    // a holds its own operator, and then cannot mint more.
    const aOwn = await sign(a, NOW, { endpoint: "10.1.0.1:9001" });
    const minted = [];
    for (let i = 0; i < 5; i++) minted.push(await sign({ ...a, operator: (await identity()).operator }, NOW));
    assert.deepEqual(await pushDescriptors(node.url, [aOwn, ...minted]), {
      accepted: 1,
      dropped: { "signer-bound": 5 },
    });

    // d squats c's operator before c publishes; c's signer is pinned to it, so c takes it back
    // even with an older descriptor, and d is free to publish its own afterwards.
    const squat = await sign({ ...d, operator: c.operator }, NOW, { endpoint: "10.4.0.1:9001", notBefore: NOW + 50 });
    assert.equal((await pushDescriptors(node.url, [squat])).accepted, 1);
    const cOwn = await sign(c, NOW, { endpoint: "10.3.0.1:9001", notBefore: NOW - 30 });
    assert.deepEqual(await pushDescriptors(node.url, [cOwn]), { accepted: 1, dropped: {} });
    assert.equal((await pushDescriptors(node.url, [await sign(d, NOW, { endpoint: "10.4.0.1:9001" })])).accepted, 1);
    assert.deepEqual(held(), [
      ...[
        `${a.operator.toLowerCase()}@10.1.0.1`,
        `${b.operator.toLowerCase()}@10.2.0.1`,
        `${c.operator.toLowerCase()}@10.3.0.1`,
        `${d.operator.toLowerCase()}@10.4.0.1`,
      ].sort(),
    ]);
    assert.deepEqual(
      { ...node.store.dropped },
      { "operator-held": 1, stale: 1, "signer-bound": 5 },
      "every drop is counted for the metric",
    );

    // A full store says so, and counts it.
    const small = new DescriptorStore({
      now: () => NOW * 1000,
      maxEntries: 1,
      context: (t) => ({ domain: TEST_DOMAIN, anchors, now: t }),
    });
    assert.equal((await small.offer(aOwn, "test")).ok, true);
    const full = await small.offer(bOwn, "test");
    assert.ok(!full.ok && full.reason === DropReason.storeFull, JSON.stringify(full));
    assert.equal(small.dropped["store-full"], 1);
    // Every reason has its own series in the metric (none lands in "other").
    for (const reason of Object.values(DropReason))
      assert.ok((DESCRIPTOR_DROP_REASONS as readonly string[]).includes(reason), `${reason} in the metric's labels`);
  });
});

describe("mesh gossip: sizes", () => {
  it("the largest descriptor fits MAX_DESCRIPTOR_JSON_BYTES, and a full store's worth fits MAX_BODY", async () => {
    const id = await identity();
    const worst = {
      ...(await sign(id, NOW, {
        nickname: "\u0000".repeat(32),
        exitPolicy: "\u0001".repeat(256),
        endpoint: "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535",
        bandwidth: Number.MAX_SAFE_INTEGER,
        notBefore: Number.MAX_SAFE_INTEGER - 1,
        notAfter: Number.MAX_SAFE_INTEGER,
      })),
      signature: `0x${"ab".repeat(99)}` as const, // the longest signature field the checks allow
    };
    const v = await verifyDescriptor(worst, { domain: TEST_DOMAIN, anchors: [], now: NOW });
    assert.ok(v.ok || v.reason !== DropReason.malformed, "the checks let it through to the signature");
    const bytes = Buffer.byteLength(JSON.stringify(worst));
    assert.ok(bytes <= MAX_DESCRIPTOR_JSON_BYTES, `${bytes} > ${MAX_DESCRIPTOR_JSON_BYTES}`);
    assert.ok(MAX_DESCRIPTORS * (bytes + 1) + 2 <= MAX_BODY);
  });

  it(
    "an entry pulls a full store (2,000 of the largest descriptors) in one request",
    { timeout: 300_000 },
    async () => {
      // One key set serves every relay (the store keys by operator); each has its own signer, pinned.
      const base = await identity();
      const ids = Array.from({ length: MAX_DESCRIPTORS }, () => ({
        ...base,
        signer: privateKeyToAccount(generatePrivateKey()),
        operator: privateKeyToAccount(generatePrivateKey()).address,
      }));
      const anchors = [bootstrapAnchor(ids.map((id) => ({ signer: id.signer.address, operator: id.operator })))];
      const store = () =>
        new DescriptorStore({ now: () => NOW * 1000, context: (t) => ({ domain: TEST_DOMAIN, anchors, now: t }) });
      const full = store();
      for (const [i, id] of ids.entries()) {
        const d = await sign(id, NOW, {
          nickname: "\u0000".repeat(32),
          exitPolicy: "\u0001".repeat(256),
          endpoint: `10.${i >> 8}.${i & 255}.1:9001`,
        });
        assert.equal((await full.offer(d, "test")).ok, true);
      }
      assert.equal(full.size, MAX_DESCRIPTORS);
      const node = await startGossipNode({ host: "127.0.0.1", port: 0, store: full, intervalMs: 0 });
      try {
        const body = await (await fetch(new URL("/v1/descriptors", node.url))).arrayBuffer();
        assert.ok(body.byteLength > 4 * 1024 * 1024, `the body (${body.byteLength} bytes) is over the old 4 MiB cap`);
        const entry = store();
        const pulled = await pullDescriptors(entry, node.url);
        assert.deepEqual(pulled, { accepted: MAX_DESCRIPTORS, dropped: {} });
        assert.equal(entry.entries().length, MAX_DESCRIPTORS);
      } finally {
        await node.close();
      }
    },
  );
});

/** A hostile bootstrap node: answers GET /v1/descriptors as `answer` says. */
async function hostile(
  answer: (res: import("node:http").ServerResponse, sent: { bytes: number; closed: boolean }) => void,
) {
  const sent = { bytes: 0, closed: false };
  const server: Server = createServer((_req, res) => {
    res.on("close", () => (sent.closed = true));
    answer(res, sent);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    sent,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe("mesh gossip: a hostile bootstrap node", () => {
  const store = () => new DescriptorStore({ context: (t) => ({ domain: TEST_DOMAIN, anchors: [], now: t }) });

  it("an endless body is cut off at the cap, memory stays bounded, and the connection is dropped", async () => {
    const chunk = Buffer.alloc(256 * 1024, "[");
    const node = await hostile((res, sent) => {
      res.writeHead(200, { "content-type": "application/json" });
      const pump = () => {
        while (!sent.closed && res.write(chunk)) sent.bytes += chunk.length;
        if (!sent.closed) res.once("drain", pump);
      };
      pump();
    });
    try {
      globalThis.gc?.();
      const before = process.memoryUsage();
      const started = Date.now();
      await assert.rejects(pullDescriptors(store(), node.url), (e: Error) => {
        assert.match(e.message, new RegExp(`answer cut off at the ${MAX_BODY}-byte cap`));
        return true;
      });
      const after = process.memoryUsage();
      assert.ok(Date.now() - started < REQUEST_TIMEOUT_MS, "cut off by size, not by the deadline");
      const grown = after.arrayBuffers + after.heapUsed - before.arrayBuffers - before.heapUsed;
      assert.ok(grown < 4 * MAX_BODY, `memory grew by ${grown} bytes`);
      for (let i = 0; i < 50 && !node.sent.closed; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(node.sent.closed, "the client hung up");
      const total = node.sent.bytes;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(node.sent.bytes, total, "nothing more is sent");
    } finally {
      await node.close();
    }
  });

  it("an announced oversized body is refused before it is read", async () => {
    const node = await hostile((res, sent) => {
      res.writeHead(200, { "content-length": String(1e12) });
      res.write(Buffer.alloc(1024, " "));
      sent.bytes = 1024;
    });
    try {
      await assert.rejects(
        pullDescriptors(store(), node.url),
        /answer of 1000000000000 bytes is over the .*cap; not read/,
      );
    } finally {
      await node.close();
    }
  });

  it("a redirect is refused", async () => {
    const target = await hostile((res) => res.end("[]"));
    const node = await hostile((res) => {
      res.writeHead(302, { location: `${target.url}/v1/descriptors` });
      res.end();
    });
    try {
      await assert.rejects(pullDescriptors(store(), node.url), /redirect/);
      await assert.rejects(pushDescriptors(node.url, []), /redirect/);
    } finally {
      await node.close();
      await target.close();
    }
  });
});

describe("mesh gossip: the bootstrap node's HTTP server against slow and greedy clients", () => {
  let node: GossipNode;
  before(async () => {
    node = await startGossipNode({
      host: "127.0.0.1",
      port: 0,
      store: new DescriptorStore({ context: (t) => ({ domain: TEST_DOMAIN, anchors: [], now: t }) }),
      intervalMs: 0,
    });
  });
  after(() => node.close());

  /** Opens a socket, sends `head`, then drips `drip` every 200 ms; resolves with ms until the server closes it. */
  const slow = (head: string, drip: string) =>
    new Promise<number>((resolve) => {
      const { port } = new URL(node.url);
      const started = Date.now();
      const socket = connect({ host: "127.0.0.1", port: Number(port) }, () => socket.write(head));
      const timer = setInterval(() => socket.writable && socket.write(drip), 200);
      socket.on("data", () => {});
      socket.on("error", () => {});
      socket.on("close", () => {
        clearInterval(timer);
        resolve(Date.now() - started);
      });
    });

  it("slow headers and slow bodies are cut within about a second of the 5 s deadline; a second POST from one address gets 429", async () => {
    const headers = slow("POST /v1/descriptors HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n");
    const body = slow(
      "POST /v1/descriptors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[",
      " ",
    );
    await new Promise((r) => setTimeout(r, 500));
    // The slow body holds 127.0.0.1's POST slot: another POST from there waits its turn.
    const second = await fetch(new URL("/v1/descriptors", node.url), { method: "POST", body: "[]" });
    assert.equal(second.status, 429);
    assert.equal((await fetch(new URL("/v1/descriptors", node.url))).status, 200, "GET still served");
    for (const [what, ms] of [
      ["slow headers", await headers],
      ["slow body", await body],
    ] as const)
      assert.ok(ms < REQUEST_TIMEOUT_MS + 2_500, `${what} held the connection ${ms} ms`);
    const again = await fetch(new URL("/v1/descriptors", node.url), { method: "POST", body: "[]" });
    assert.equal(again.status, 200, "the slot is free once the slow POST is cut");
  });
});

describe("mesh sources: rounds never queue", () => {
  it("concurrent refreshes share one waiting round; rounds asked for by events start at most one per gap", async () => {
    let gets = 0;
    const node = await hostile((res) => {
      gets++;
      setTimeout(() => res.end("[]"), 150);
    });
    const sources = await startDescriptorSources({
      domain: TEST_DOMAIN,
      bootstrap: [node.url],
      trust: [{ signer: privateKeyToAccount(generatePrivateKey()).address }],
      intervalMs: 3_600_000,
      minRequestedGapMs: 1_000,
    });
    try {
      assert.equal(gets, 1, "the first round");
      await Promise.all(Array.from({ length: 20 }, () => sources.refresh()));
      assert.equal(gets, 3, "one round ran; the 19 calls made meanwhile shared one more");
      // A burst of EXTENDs to unknown relays: none starts a round right after one started...
      assert.equal(Array.from({ length: 100 }, () => sources.requestRound()).filter(Boolean).length, 0);
      await new Promise((r) => setTimeout(r, 1_100));
      // ...and once the gap has passed, one burst starts one round.
      assert.equal(Array.from({ length: 100 }, () => sources.requestRound()).filter(Boolean).length, 1);
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(gets, 4);
    } finally {
      await sources.close();
      await node.close();
    }
  });
});

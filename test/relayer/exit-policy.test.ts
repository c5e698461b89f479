/**
 * The exit policy and connectTarget, on loopback only. Public addresses appear only as inputs to
 * `check`; every real connection goes to 127.0.0.0/8.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { networkInterfaces } from "node:os";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../relayer/src/log.ts";
import { StreamOpenError, StreamReason } from "../../relayer/src/wire/reasons.ts";
import { type ExitPolicy, connectTarget, createExitPolicy } from "../../relayer/src/exit/index.ts";
import { closeServer, closedPort, listen } from "../helpers/net.ts";

function refused(policy: ExitPolicy, address: string, port = 443): string {
  const verdict = policy.check(address, port);
  assert.equal(verdict.ok, false, `${address}:${port} should be refused`);
  return verdict.ok ? "" : verdict.why;
}
function allowed(policy: ExitPolicy, address: string, port = 443): void {
  assert.deepEqual(policy.check(address, port), { ok: true }, `${address}:${port} should be allowed`);
}

const REFUSED_BY_DEFAULT: Array<[string, string]> = [
  ["127.0.0.1", "loopback"],
  ["127.255.255.254", "loopback"],
  ["::1", "loopback"],
  ["10.0.0.1", "private"],
  ["10.255.255.255", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.254", "private"],
  ["192.168.1.1", "private"],
  ["fc00::1", "private"],
  ["fdff:ffff::1", "private"],
  ["169.254.169.254", "link-local"],
  ["fe80::1", "link-local"],
  ["febf::1", "link-local"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["ff02::1", "multicast"],
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "unspecified"],
  ["::", "unspecified"],
  ["100.64.0.1", "carrier-grade NAT"],
  ["100.127.255.254", "carrier-grade NAT"],
  ["255.255.255.255", "reserved or broadcast"],
  ["240.0.0.1", "reserved or broadcast"],
  // The same hosts written as IPv6 that carries IPv4.
  ["::ffff:127.0.0.1", "loopback"],
  ["::ffff:7f00:1", "loopback"],
  ["0:0:0:0:0:ffff:127.0.0.1", "loopback"],
  ["::ffff:10.1.2.3", "private"],
  ["::ffff:169.254.169.254", "link-local"],
  ["::ffff:0.0.0.0", "unspecified"],
  ["64:ff9b::127.0.0.1", "loopback"],
  ["64:ff9b::a00:1", "private"],
  ["2002:7f00:1::1", "loopback"],
  ["::127.0.0.1", "IPv4-compatible IPv6"],
];

const PUBLIC = [
  "8.8.8.8",
  "1.1.1.1",
  "172.32.0.1",
  "100.128.0.1",
  "2606:4700:4700::1111",
  "::ffff:8.8.8.8",
  "64:ff9b::8.8.8.8",
];

/** This machine's non-loopback addresses, which the exit must refuse as its own. */
const OWN = Object.values(networkInterfaces())
  .flatMap((infos) => infos ?? [])
  .filter((info) => !info.internal)
  .map((info) => info.address);

describe("exit policy: defaults", () => {
  const policy = createExitPolicy();
  it("refuses every non-public range, with the range named in `why`", () => {
    for (const [address, label] of REFUSED_BY_DEFAULT) {
      // NAT64 and 6to4 forms say so after the label ("loopback address behind NAT64 or 6to4").
      assert.ok(refused(policy, address).startsWith(`${label} address`), address);
    }
  });
  it("allows public addresses, also in IPv4-mapped and NAT64 form", () => {
    for (const address of PUBLIC) allowed(policy, address);
  });
  it("refuses the node's own interface addresses", { skip: OWN.length === 0 && "no non-loopback interface" }, () => {
    for (const address of OWN) assert.equal(refused(policy, address), "address of the exit node itself", address);
  });
  it("refuses names, zone-scoped and malformed addresses: the policy sees resolved IPs only", () => {
    for (const address of ["localhost", "fe80::1%lo", "fe80::1%1", "127.1", "", "1.2.3.4.5", "[::1]"])
      refused(policy, address);
  });
  it("refuses ports outside 1..65535", () => {
    for (const port of [0, -1, 65536, 80.5, Number.NaN]) refused(policy, "8.8.8.8", port);
    allowed(policy, "8.8.8.8", 1);
    allowed(policy, "8.8.8.8", 65535);
  });
});

describe("exit policy: options", () => {
  it("ownAddresses adds the node's public IP, in every form", () => {
    const policy = createExitPolicy({ ownAddresses: ["9.9.9.9", "2001:4860::/32"] });
    refused(policy, "9.9.9.9");
    refused(policy, "::ffff:9.9.9.9");
    refused(policy, "2001:4860::8888");
    allowed(policy, "9.9.9.10");
  });
  it("allow opens a private range; deny wins over allow", () => {
    const policy = createExitPolicy({ allow: ["10.0.0.0/8", "fd00:1::/32"], deny: ["10.1.0.0/16"] });
    allowed(policy, "10.2.3.4");
    allowed(policy, "::ffff:10.2.3.4");
    allowed(policy, "fd00:1::5");
    refused(policy, "10.1.2.3");
    refused(policy, "::ffff:10.1.2.3");
    refused(policy, "192.168.1.1");
    refused(policy, "fd00:2::5");
  });
  it("deny refuses public addresses in all their forms", () => {
    const policy = createExitPolicy({ deny: ["8.8.8.0/24"] });
    refused(policy, "8.8.8.8");
    refused(policy, "::ffff:8.8.8.8");
    refused(policy, "64:ff9b::808:808");
    allowed(policy, "8.8.4.4");
  });
  it("allow does not open the node's own addresses", () => {
    const policy = createExitPolicy({ allow: ["9.9.0.0/16"], ownAddresses: ["9.9.9.9"] });
    allowed(policy, "9.9.1.1");
    refused(policy, "9.9.9.9");
  });
  it("allowPrivateTargets opens private, loopback, link-local and own addresses, and warns loudly", () => {
    const lines: string[] = [];
    const logger = createLogger({ write: (line) => lines.push(line) });
    const policy = createExitPolicy({
      allowPrivateTargets: true,
      logger,
      ownAddresses: ["9.9.9.9"],
      deny: ["127.0.0.3"],
    });
    for (const address of [
      "127.0.0.1",
      "::1",
      "::ffff:127.0.0.1",
      "10.1.2.3",
      "fd00::1",
      "169.254.1.1",
      "100.64.0.1",
      "9.9.9.9",
      ...OWN,
    ]) {
      allowed(policy, address);
    }
    for (const address of ["0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255"]) refused(policy, address);
    refused(policy, "127.0.0.3"); // deny wins even here
    assert.equal(lines.length, 1);
    const record = JSON.parse(lines[0] ?? "{}") as { level: string; msg: string };
    assert.equal(record.level, "warn");
    assert.match(record.msg, /PRIVATE AND LOOPBACK/);
  });
  // The demo exit runs with allowPrivateTargets so that it can reach a site on 127.0.0.1. That
  // permission must mean the loopback host itself: NAT64 and 6to4 addresses that embed 127.0.0.1
  // (or a private address) are hosts elsewhere and were once opened by it and connected to.
  it("allowPrivateTargets and allow entries never open NAT64 or 6to4 forms of local addresses", () => {
    const policy = createExitPolicy({ allowPrivateTargets: true, allow: ["127.0.0.0/8", "10.0.0.0/8"] });
    for (const address of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "::ffff:7f00:1"]) {
      allowed(policy, address);
    }
    for (const address of [
      "64:ff9b::7f00:1",
      "64:ff9b::127.0.0.1",
      "2002:7f00:1::1",
      "2002:7f00:1:0:0:0:0:1",
      "64:ff9b::a00:1",
      "2002:a00:1::",
      "64:ff9b::a9fe:a9fe",
    ]) {
      refused(policy, address);
    }
    allowed(policy, "64:ff9b::8.8.8.8"); // a public IPv4 host behind NAT64 is a public target
  });
  it("allowLoopbackTargets opens 127.0.0.0/8 and ::1 (also IPv4-mapped) and nothing else", () => {
    const policy = createExitPolicy({ allowLoopbackTargets: true });
    for (const address of ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1", "8.8.8.8"]) allowed(policy, address);
    for (const address of [
      "10.0.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "fd00::1",
      "0.0.0.0",
      "::",
      "64:ff9b::7f00:1",
      "2002:7f00:1::1",
      "::127.0.0.1",
    ]) {
      refused(policy, address);
    }
  });
  it("allowPorts limits ports to single values and ranges", () => {
    const policy = createExitPolicy({ allowPorts: [80, [8000, 8100]] });
    allowed(policy, "8.8.8.8", 80);
    allowed(policy, "8.8.8.8", 8000);
    allowed(policy, "8.8.8.8", 8100);
    refused(policy, "8.8.8.8", 443);
    refused(policy, "8.8.8.8", 8101);
  });
  it("rejects malformed configuration, naming the key", () => {
    assert.throws(() => createExitPolicy({ allow: ["10.0.0.0/33"] }), /allow: "10.0.0.0\/33"/);
    assert.throws(() => createExitPolicy({ deny: ["example.com"] }), /deny: "example.com"/);
    assert.throws(() => createExitPolicy({ deny: ["::/129"] }), /deny/);
    assert.throws(() => createExitPolicy({ ownAddresses: ["10.0.0.0/x"] }), /ownAddresses/);
    assert.throws(() => createExitPolicy({ allowPorts: [0] }), /allowPorts/);
    assert.throws(() => createExitPolicy({ allowPorts: [[10, 5]] }), /allowPorts/);
  });
});

async function rejectsWith(promise: Promise<unknown>, reason: number): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StreamOpenError, String(error));
    assert.equal(error.reason, reason, error.message);
    return true;
  });
}

describe("connectTarget", () => {
  // Two servers on the same port: 127.0.0.2 (which the tests' policy allows) and 127.0.0.1 (which
  // it refuses). A connection that lands on the second one is a policy bypass.
  const good = { server: createServer(), accepted: 0 };
  const bad = { server: createServer(), accepted: 0 };
  let port = 0;
  const policy = createExitPolicy({ allow: ["127.0.0.2"] });

  before(async () => {
    for (const s of [good, bad]) {
      s.server.on("connection", (socket) => {
        s.accepted++;
        socket.on("error", () => {});
        socket.end();
      });
    }
    port = await listen(good.server, "127.0.0.2");
    await new Promise<void>((resolve, reject) => {
      bad.server.once("error", reject);
      bad.server.listen(port, "127.0.0.1", () => resolve());
    });
  });
  after(async () => {
    await closeServer(good.server);
    await closeServer(bad.server);
  });

  it("resolves once and connects to the checked address (DNS rebinding: public, then 127.0.0.1)", async () => {
    let calls = 0;
    const rebinding = async () =>
      calls++ === 0 ? [{ address: "127.0.0.2", family: 4 as const }] : [{ address: "127.0.0.1", family: 4 as const }];
    const before = { good: good.accepted, bad: bad.accepted };
    const socket = await connectTarget({ type: "domain", host: "rebind.example", port }, policy, { lookup: rebinding });
    assert.equal(socket.remoteAddress, "127.0.0.2");
    socket.destroy();
    assert.equal(calls, 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(good.accepted, before.good + 1);
    assert.equal(bad.accepted, before.bad);
  });

  it("refuses when the single resolution is refused, even if a second one would pass", async () => {
    let calls = 0;
    const rebinding = async () =>
      calls++ === 0 ? [{ address: "127.0.0.1", family: 4 as const }] : [{ address: "127.0.0.2", family: 4 as const }];
    await rejectsWith(
      connectTarget({ host: "rebind.example", port }, policy, { lookup: rebinding }),
      StreamReason.notAllowed,
    );
    assert.equal(calls, 1);
  });

  it("skips refused addresses and tries allowed ones in order, moving on after a refusal", async () => {
    const refusedPort = await closedPort("127.0.0.3");
    const open = createExitPolicy({ allow: ["127.0.0.2", "127.0.0.3"] });
    const lookup = async () => [
      { address: "127.0.0.1", family: 4 as const }, // refused by policy
      { address: "127.0.0.3", family: 4 as const }, // allowed, nothing listening on `port` there
      { address: "127.0.0.2", family: 4 as const },
    ];
    const socket = await connectTarget({ host: "multi.example", port }, open, { lookup });
    assert.equal(socket.remoteAddress, "127.0.0.2");
    socket.destroy();
    await rejectsWith(connectTarget({ host: "127.0.0.3", port: refusedPort }, open), StreamReason.connectionRefused);
  });

  it("refuses loopback through the system resolver by default (localhost)", async () => {
    await rejectsWith(
      connectTarget({ type: "domain", host: "localhost", port }, createExitPolicy()),
      StreamReason.notAllowed,
    );
  });

  it("refuses IP literals and IPv4-mapped literals without resolving", async () => {
    const lookup = async () => assert.fail("an IP literal must not be resolved");
    const strict = createExitPolicy();
    await rejectsWith(
      connectTarget({ type: "ipv4", host: "127.0.0.1", port }, strict, { lookup }),
      StreamReason.notAllowed,
    );
    await rejectsWith(
      connectTarget({ type: "ipv6", host: "::ffff:127.0.0.1", port }, strict, { lookup }),
      StreamReason.notAllowed,
    );
    await rejectsWith(
      connectTarget({ type: "domain", host: "[::1]", port }, strict, { lookup }),
      StreamReason.notAllowed,
    );
    await rejectsWith(connectTarget({ host: "127.0.0.2", port: 0 }, policy, { lookup }), StreamReason.notAllowed);
  });

  it("maps refusal, unresolvable names and timeouts to RFC 1928 reasons", async () => {
    const open = createExitPolicy({ allowPrivateTargets: true });
    await rejectsWith(
      connectTarget({ host: "127.0.0.1", port: await closedPort() }, open),
      StreamReason.connectionRefused,
    );
    await rejectsWith(
      connectTarget({ host: "no-such-host.invalid", port: 80 }, open, { timeoutMs: 8_000 }),
      StreamReason.hostUnreachable,
    );
    const notFound = Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" });
    await rejectsWith(
      connectTarget({ host: "x.example", port: 80 }, open, { lookup: () => Promise.reject(notFound) }),
      StreamReason.hostUnreachable,
    );
    await rejectsWith(
      connectTarget({ host: "x.example", port: 80 }, open, { lookup: async () => [] }),
      StreamReason.hostUnreachable,
    );
    const hang = () => new Promise<never>(() => {});
    const started = Date.now();
    await rejectsWith(
      connectTarget({ host: "x.example", port: 80 }, open, { lookup: hang, timeoutMs: 100 }),
      StreamReason.ttlExpired,
    );
    assert.ok(Date.now() - started < 2_000);
  });

  it("stops when the caller's signal aborts, with the signal's reason", async () => {
    const controller = new AbortController();
    const attempt = connectTarget({ host: "x.example", port: 80 }, policy, {
      lookup: () => new Promise<never>(() => {}),
      signal: controller.signal,
    });
    controller.abort(new StreamOpenError(StreamReason.ttlExpired, "entry gave up"));
    await rejectsWith(attempt, StreamReason.ttlExpired);
    const aborted = AbortSignal.abort("gone");
    await rejectsWith(
      connectTarget({ host: "127.0.0.2", port }, policy, { signal: aborted }),
      StreamReason.generalFailure,
    );
  });
});

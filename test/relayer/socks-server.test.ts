/**
 * The SOCKS5 server end to end on loopback: curl and the `socks` npm client as applications, the
 * exit's connectTarget (private targets allowed) as openStream, and a plain net.Socket wherever
 * the exact reply bytes matter.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer as createHttpServer } from "node:http";
import { type Server, type Socket, connect, createServer } from "node:net";
import { Duplex } from "node:stream";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { SocksClient } from "socks";
import { StreamOpenError, StreamReason } from "../../relayer/src/wire/reasons.ts";
import { connectTarget, createExitPolicy } from "../../relayer/src/exit/index.ts";
import {
  type OpenStream,
  type OpenedStream,
  type SocksRequest,
  type SocksServer,
  startSocksServer,
} from "../../relayer/src/socks/index.ts";
import {
  closeServer,
  closedPort,
  curl,
  echoServer,
  halfCloseServer,
  listen,
  rawExchange,
  readBytes,
  sha256,
  waitFor,
} from "../helpers/net.ts";

const BIG = randomBytes(10 * 1024 * 1024);
const GREETING = Buffer.from([5, 1, 0]);
const METHOD_OK = Buffer.from([5, 0]);

const reply = (rep: number) => Buffer.from([5, rep, 0, 1, 0, 0, 0, 0, 0, 0]);
const ipv4Request = (host: string, port: number, command = 1) =>
  Buffer.from([5, command, 0, 1, ...host.split(".").map(Number), port >> 8, port & 0xff]);
const domainRequest = (host: string, port: number) =>
  Buffer.from([5, 1, 0, 3, host.length, ...Buffer.from(host), port >> 8, port & 0xff]);

const servers: Server[] = [];
const socksServers: SocksServer[] = [];
let httpPort = 0;
let http6Port = 0;
let echoPort = 0;
let halfClosePort = 0;
let main: SocksServer;
const requests: SocksRequest[] = [];

// Allowed: everything local except 127.0.0.3, which stands for "refused by the exit policy".
const policy = createExitPolicy({ allowPrivateTargets: true, deny: ["127.0.0.3"] });
const direct: OpenStream = async (request, signal) => {
  requests.push(request);
  return { stream: await connectTarget(request.target, policy, { signal, timeoutMs: 5_000 }) };
};

async function startSocks(options: Partial<Parameters<typeof startSocksServer>[0]> = {}): Promise<SocksServer> {
  const server = await startSocksServer({ port: 0, openStream: direct, ...options });
  socksServers.push(server);
  return server;
}

async function socksConnect(port: number, host: string, targetPort: number, auth?: [string, string]): Promise<Socket> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: "127.0.0.1", port, type: 5, ...(auth ? { userId: auth[0], password: auth[1] } : {}) },
    command: "connect",
    destination: { host, port: targetPort },
    timeout: 5_000,
  });
  return socket;
}

/** Writes `payload`, ends, and returns everything read until the other side ends. */
function roundTrip(socket: Socket, payload: Buffer, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error("round trip timed out")), timeoutMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.end(payload);
  });
}

before(async () => {
  const handler = (req: { url?: string }, res: { end(body: Buffer | string): void }) =>
    res.end(req.url === "/big" ? BIG : `hello ${req.url}`);
  const http4 = createHttpServer(handler);
  const http6 = createHttpServer(handler);
  const echo = echoServer();
  const halfClose = halfCloseServer();
  servers.push(http4, http6, echo, halfClose);
  httpPort = await listen(http4, "127.0.0.1");
  http6Port = await listen(http6, "::1");
  echoPort = await listen(echo, "127.0.0.1");
  halfClosePort = await listen(halfClose, "127.0.0.1");
  main = await startSocks();
});

after(async () => {
  for (const server of socksServers) await server.close();
  for (const server of servers) await closeServer(server);
});

describe("socks server with curl", () => {
  it("carries a 10 MiB body byte for byte (socks5h)", async () => {
    const result = await curl(["-x", `socks5h://127.0.0.1:${main.address.port}`, `http://127.0.0.1:${httpPort}/big`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.length, BIG.length);
    assert.equal(sha256(result.stdout), sha256(BIG));
  });

  it("reaches an IPv6 target [::1], sent as ATYP 4 in canonical form", async () => {
    const result = await curl(["-x", `socks5h://127.0.0.1:${main.address.port}`, `http://[::1]:${http6Port}/six`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.toString(), "hello /six");
    assert.deepEqual(requests.at(-1)?.target, { type: "ipv6", host: "::1", port: http6Port });
  });

  it("passes a domain (localhost) to the exit unresolved", async () => {
    const result = await curl([
      "--socks5-hostname",
      `127.0.0.1:${main.address.port}`,
      `http://localhost:${httpPort}/name`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.toString(), "hello /name");
    assert.deepEqual(requests.at(-1)?.target, { type: "domain", host: "localhost", port: httpPort });
  });

  it("accepts any credentials when no auth is configured and hands the username over for isolation", async () => {
    const proxy = `socks5h://127.0.0.1:${main.address.port}`;
    const result = await curl(["-x", proxy, "-U", "tab-7:x", `http://127.0.0.1:${httpPort}/iso`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(requests.at(-1)?.username, "tab-7");
    await curl(["-x", proxy, `http://127.0.0.1:${httpPort}/plain`]);
    assert.equal(requests.at(-1)?.username, undefined);
  });

  it("reports the exit's reason: refused (5), unresolvable (4), policy (2)", async () => {
    const proxy = `socks5h://127.0.0.1:${main.address.port}`;
    const refused = await curl(["-x", proxy, `http://127.0.0.1:${await closedPort()}/`]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /\(5\)|refused/i);
    const unresolvable = await curl(["-x", proxy, "http://no-such-host.invalid/"]);
    assert.notEqual(unresolvable.code, 0);
    assert.match(unresolvable.stderr, /\(4\)|unreachable/i);
    const denied = await curl(["-x", proxy, `http://127.0.0.3:${httpPort}/`]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /\(2\)|not allowed/i);
  });
});

describe("socks server reply bytes", () => {
  const exchange = (request: Buffer) => rawExchange(main.address.port, [Buffer.concat([GREETING, request])]);
  const expectReply = async (request: Buffer, rep: number) => {
    const result = await exchange(request);
    assert.deepEqual(result.data, Buffer.concat([METHOD_OK, reply(rep)]), `REP ${rep}`);
    assert.ok(result.ended && result.closed, "the server closes after an error reply");
  };

  it("answers failures with full 10-byte replies and closes", async () => {
    await expectReply(ipv4Request("127.0.0.1", await closedPort()), StreamReason.connectionRefused);
    await expectReply(domainRequest("no-such-host.invalid", 80), StreamReason.hostUnreachable);
    await expectReply(ipv4Request("127.0.0.3", httpPort), StreamReason.notAllowed);
    await expectReply(ipv4Request("127.0.0.1", httpPort, 2), StreamReason.commandNotSupported);
    await expectReply(ipv4Request("127.0.0.1", httpPort, 3), StreamReason.commandNotSupported);
    await expectReply(Buffer.from([5, 1, 0, 2, 1, 2, 3, 4, 0, 80]), StreamReason.addressTypeNotSupported);
    await expectReply(ipv4Request("127.0.0.1", 0), StreamReason.notAllowed);
    await expectReply(domainRequest("a\0b", 80), StreamReason.hostUnreachable);
  });

  it("keeps optimistic data sent with the request and forwards it once open", async () => {
    const http = Buffer.from("GET /early HTTP/1.0\r\n\r\n");
    const result = await rawExchange(main.address.port, [
      Buffer.concat([GREETING, ipv4Request("127.0.0.1", httpPort), http]),
    ]);
    assert.deepEqual(result.data.subarray(0, 12), Buffer.concat([METHOD_OK, reply(0)]));
    const response = result.data.subarray(12).toString();
    assert.match(response, /^HTTP\/1\.1 200/);
    assert.match(response, /hello \/early$/);
  });

  it("keeps optimistic data and the client's EOF when both arrive before the stream opens", async () => {
    const socket = connect({ host: "127.0.0.1", port: main.address.port });
    socket.on("error", () => {});
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => socket.on("end", resolve));
    socket.end(Buffer.concat([GREETING, ipv4Request("127.0.0.1", halfClosePort), Buffer.from("early")]));
    await ended;
    assert.deepEqual(Buffer.concat(chunks), Buffer.concat([METHOD_OK, reply(0), Buffer.from("got:early")]));
  });

  it("holds large optimistic data with backpressure and loses none of it", async () => {
    const payload = randomBytes(300 * 1024); // past the 64 KiB at which the session pauses the client
    const socket = connect({ host: "127.0.0.1", port: main.address.port });
    socket.on("error", () => {});
    socket.write(Buffer.concat([GREETING, ipv4Request("127.0.0.1", halfClosePort)]));
    const answer = roundTrip(socket, payload);
    assert.deepEqual((await answer).subarray(0, 12), Buffer.concat([METHOD_OK, reply(0)]));
    assert.equal(sha256((await answer).subarray(12)), sha256(Buffer.concat([Buffer.from("got:"), payload])));
  });

  it("parses a handshake that arrives one byte at a time", async () => {
    const socket = connect({ host: "127.0.0.1", port: main.address.port });
    socket.on("error", () => {});
    const bytes = Buffer.concat([GREETING, domainRequest("localhost", echoPort)]);
    const got = readBytes(socket, 12);
    for (const byte of bytes) {
      socket.write(Buffer.from([byte]));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    assert.deepEqual(await got, Buffer.concat([METHOD_OK, reply(0)]));
    socket.write("ping");
    assert.equal((await readBytes(socket, 4)).toString(), "ping");
    socket.destroy();
  });

  it("sends a 22-byte reply when the stream reveals an IPv6 bound address", async () => {
    const server = await startSocks({
      openStream: async (request, signal) => ({
        stream: await connectTarget(request.target, policy, { signal }),
        bound: { host: "::1", port: 1234 },
      }),
    });
    const socket = connect({ host: "127.0.0.1", port: server.address.port });
    socket.on("error", () => {});
    socket.write(Buffer.concat([GREETING, ipv4Request("127.0.0.1", echoPort)]));
    const got = await readBytes(socket, 24);
    const expected = Buffer.from([5, 0, 0, 4, ...Buffer.alloc(15), 1, 0x04, 0xd2]);
    assert.deepEqual(got, Buffer.concat([METHOD_OK, expected]));
    socket.destroy();
  });
});

describe("socks server with auth configured", () => {
  let server: SocksServer;
  const user = (name: string, pass: string) =>
    Buffer.from([1, name.length, ...Buffer.from(name), pass.length, ...Buffer.from(pass)]);
  before(async () => {
    server = await startSocks({
      auth: {
        verify: (name, pass) => {
          if (name === "throws") throw new Error("verifier bug");
          return name === "alice" && pass === "secret";
        },
      },
    });
  });

  it("refuses clients that do not offer username/password with 05 FF", async () => {
    const result = await rawExchange(server.address.port, [GREETING]);
    assert.deepEqual(result.data, Buffer.from([5, 0xff]));
    assert.ok(result.closed);
  });

  it("answers a wrong password (or a verifier that throws) with 01 01 and closes", async () => {
    for (const creds of [user("alice", "wrong"), user("throws", "x"), Buffer.from([1, 0])]) {
      const result = await rawExchange(server.address.port, [
        Buffer.from([5, 2, 0, 2]),
        creds,
        ipv4Request("127.0.0.1", httpPort),
      ]);
      assert.deepEqual(result.data, Buffer.from([5, 2, 1, 1]));
      assert.ok(result.closed);
    }
    const viaCurl = await curl([
      "-x",
      `socks5h://127.0.0.1:${server.address.port}`,
      "-U",
      "alice:nope",
      `http://127.0.0.1:${httpPort}/`,
    ]);
    assert.notEqual(viaCurl.code, 0);
  });

  it("lets the right credentials through", async () => {
    const viaCurl = await curl([
      "-x",
      `socks5h://127.0.0.1:${server.address.port}`,
      "-U",
      "alice:secret",
      `http://127.0.0.1:${httpPort}/in`,
    ]);
    assert.equal(viaCurl.code, 0, viaCurl.stderr);
    assert.equal(viaCurl.stdout.toString(), "hello /in");
    const socket = await socksConnect(server.address.port, "127.0.0.1", echoPort, ["alice", "secret"]);
    assert.equal((await roundTrip(socket, Buffer.from("hi"))).toString(), "hi");
  });
});

describe("socks server robustness", () => {
  it("closes only the connection with a malformed greeting", async () => {
    const survivor = await socksConnect(main.address.port, "127.0.0.1", echoPort);
    const http = await rawExchange(main.address.port, [Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]);
    assert.deepEqual(http.data, Buffer.alloc(0), "no SOCKS5 reply to a non-SOCKS5 client");
    assert.ok(http.closed);
    const noMethods = await rawExchange(main.address.port, [Buffer.from([5, 0])]);
    assert.deepEqual(noMethods.data, Buffer.from([5, 0xff]));
    assert.equal((await roundTrip(survivor, Buffer.from("still here"))).toString(), "still here");
  });

  it("survives arbitrary bytes from many clients, then still serves", async () => {
    const inputs = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 300 }), { numRuns: 60, seed: 42 });
    await Promise.all(inputs.map((input) => rawExchange(main.address.port, [input], 300)));
    const result = await curl(["-x", `socks5h://127.0.0.1:${main.address.port}`, `http://127.0.0.1:${httpPort}/after`]);
    assert.equal(result.stdout.toString(), "hello /after");
  });

  it("passes half-close both ways (request, EOF, response, EOF)", async () => {
    const socket = await socksConnect(main.address.port, "127.0.0.1", halfClosePort);
    assert.equal((await roundTrip(socket, Buffer.from("ping"))).toString(), "got:ping");
  });

  it("carries 200 parallel streams correctly", async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const payload = randomBytes(32 * 1024);
        const socket = await socksConnect(main.address.port, "127.0.0.1", echoPort);
        return sha256(await roundTrip(socket, payload, 20_000)) === sha256(payload);
      }),
    );
    assert.equal(results.filter(Boolean).length, 200);
    await waitFor(() => main.connections === 0, 3_000, "all connections to close");
  });

  it("destroys the client connection when the target resets", async () => {
    const rst = createServer((socket) => socket.on("data", () => socket.resetAndDestroy()));
    servers.push(rst);
    const socket = await socksConnect(main.address.port, "127.0.0.1", await listen(rst, "127.0.0.1"));
    socket.on("error", () => {});
    const closed = new Promise((resolve) => socket.on("close", resolve));
    socket.write("trigger");
    await closed;
  });

  // A protocol without a length field cannot tell a FIN from the end of the data: a stream that
  // dies mid-transfer must reach the application as a reset (ECONNRESET), never as a clean end.
  it("resets the client connection when the stream dies mid-transfer", async () => {
    const dying: OpenStream = async () => {
      const stream = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
      setTimeout(() => stream.push(Buffer.alloc(1000, 1)), 20);
      setTimeout(() => stream.destroy(new StreamOpenError(StreamReason.generalFailure, "circuit died")), 80);
      return { stream };
    };
    const server = await startSocks({ openStream: dying });
    const socket = connect({ host: "127.0.0.1", port: server.address.port });
    socket.write(Buffer.concat([GREETING, ipv4Request("127.0.0.1", 80)]));
    const outcome = await new Promise<string>((resolve) => {
      let bytes = 0;
      const timer = setTimeout(() => resolve("timeout"), 5_000);
      socket.on("data", (chunk: Buffer) => (bytes += chunk.length));
      socket.on("end", () => resolve(`end after ${bytes} bytes`));
      socket.on("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(`${error.code ?? error.name} after ${bytes} bytes`);
      });
    });
    socket.destroy();
    assert.equal(outcome, "ECONNRESET after 1012 bytes");
  });

  it("closes a handshake that does not complete in time", async () => {
    const server = await startSocks({ handshakeTimeoutMs: 200 });
    const started = Date.now();
    const partial = await rawExchange(server.address.port, [Buffer.from([5])]);
    assert.ok(partial.closed && partial.data.length === 0);
    const noRequest = await rawExchange(server.address.port, [GREETING]);
    assert.deepEqual(noRequest.data, METHOD_OK);
    assert.ok(noRequest.closed && Date.now() - started < 2_000);
  });

  it("closes connections beyond maxConnections at once when every connection is past its handshake", async () => {
    const server = await startSocks({ maxConnections: 3 });
    const open: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const socket = await socksConnect(server.address.port, "127.0.0.1", echoPort);
      socket.on("error", () => {});
      open.push(socket);
    }
    assert.equal(server.connections, 3);
    const extra = await rawExchange(server.address.port, [GREETING], 2_000);
    assert.ok(extra.closed && extra.data.length === 0, "the 4th connection is closed without a reply");
    open.pop()?.destroy();
    await waitFor(() => server.connections === 2);
    const again = await rawExchange(server.address.port, [GREETING], 300);
    assert.deepEqual(again.data, METHOD_OK);
    for (const socket of open) socket.destroy();
  });

  it("closes a client whose greeting is incomplete after greetingTimeoutMs, long before the handshake limit", async () => {
    const server = await startSocks({ greetingTimeoutMs: 150, handshakeTimeoutMs: 60_000 });
    const partial = await rawExchange(server.address.port, [Buffer.from([5, 2, 0])], 2_000);
    assert.ok(partial.closed && partial.data.length === 0, "closed without a reply");
    const complete = await rawExchange(server.address.port, [GREETING], 400);
    assert.deepEqual(complete.data, METHOD_OK, "a complete greeting is answered and then waits");
    assert.equal(complete.closed, false);
  });

  // Slowloris: clients that send one byte and hold the connection filled every slot, and real
  // clients were closed at once (2 of 55 served). Now a stalled handshake gives way to a new client,
  // and the greeting has its own short deadline.
  it("serves new clients before stalled ones while held one-byte connections fill the server", async () => {
    const maxConnections = 128;
    const server = await startSocks({ maxConnections });
    const held = new Set<Socket>();
    let attacking = true;
    const hold = () => {
      if (!attacking || held.size >= 2 * maxConnections) return;
      const socket = connect({ host: "127.0.0.1", port: server.address.port });
      held.add(socket);
      socket.on("error", () => {});
      socket.once("connect", () => socket.write(Buffer.from([5])));
      socket.once("close", () => {
        held.delete(socket);
        setImmediate(hold); // a persistent attacker reconnects at once
      });
    };
    for (let i = 0; i < 2 * maxConnections; i++) hold();
    await waitFor(() => server.connections >= maxConnections, 5_000, "the server to fill up");
    const attempts = 40;
    let served = 0;
    for (let batch = 0; batch < attempts / 8; batch++) {
      const results = await Promise.all(
        Array.from({ length: 8 }, async () => {
          try {
            const socket = await socksConnect(server.address.port, "127.0.0.1", echoPort);
            const echoed = await roundTrip(socket, Buffer.from("ping"), 5_000);
            return echoed.toString() === "ping";
          } catch {
            return false;
          }
        }),
      );
      served += results.filter(Boolean).length;
    }
    attacking = false;
    for (const socket of held) socket.destroy();
    console.log(`# slowloris: ${served}/${attempts} legitimate requests served with ${maxConnections} slots held`);
    assert.ok(served >= attempts * 0.9, `only ${served}/${attempts} served`);
  });
});

describe("socks server and openStream", () => {
  const signals: AbortSignal[] = [];
  /** Behaviour chosen by the target name, so one server covers every openStream outcome. */
  const scripted: OpenStream = (request, signal) => {
    if (request.target.host === "throw.test") throw new Error("synchronous bug");
    signals.push(signal);
    if (request.target.host === "reject.test") return Promise.reject(new Error("boom"));
    if (request.target.host === "done.test") return Promise.reject(new StreamOpenError(StreamReason.done, "bad"));
    if (request.target.host === "nostream.test") return Promise.resolve({} as unknown as OpenedStream);
    return new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
  };

  it("answers REP 1 when openStream throws, rejects with a plain error or reason 0, or gives no stream", async () => {
    const server = await startSocks({ openStream: scripted });
    for (const host of ["throw.test", "reject.test", "done.test", "nostream.test"]) {
      const result = await rawExchange(server.address.port, [Buffer.concat([GREETING, domainRequest(host, 80)])]);
      assert.deepEqual(result.data, Buffer.concat([METHOD_OK, reply(StreamReason.generalFailure)]), host);
    }
  });

  it("answers REP 6 and aborts the signal when openStream is too slow", async () => {
    const server = await startSocks({ openStream: scripted, connectTimeoutMs: 200 });
    const result = await rawExchange(server.address.port, [Buffer.concat([GREETING, domainRequest("hang.test", 80)])]);
    assert.deepEqual(result.data, Buffer.concat([METHOD_OK, reply(StreamReason.ttlExpired)]));
    const signal = signals.at(-1);
    assert.ok(signal?.aborted);
    assert.equal((signal.reason as StreamOpenError).reason, StreamReason.ttlExpired);
  });

  it("aborts the signal when the client leaves during openStream", async () => {
    const server = await startSocks({ openStream: scripted });
    const socket = connect({ host: "127.0.0.1", port: server.address.port });
    socket.on("error", () => {});
    socket.write(Buffer.concat([GREETING, domainRequest("hang.test", 80)]));
    await readBytes(socket, 2);
    await waitFor(() => server.connections === 1 && signals.length > 0 && !signals.at(-1)?.aborted);
    const signal = signals.at(-1);
    socket.destroy();
    await waitFor(() => signal?.aborted === true, 2_000, "abort");
    await waitFor(() => server.connections === 0);
  });

  it("close() stops listening and destroys open and opening connections", async () => {
    const server = await startSocks({
      openStream: (request, signal) =>
        request.target.host === "hang.test" ? scripted(request, signal) : direct(request, signal),
    });
    const piped = await socksConnect(server.address.port, "127.0.0.1", echoPort);
    const opening = connect({ host: "127.0.0.1", port: server.address.port });
    for (const socket of [piped, opening]) socket.on("error", () => {});
    opening.write(Buffer.concat([GREETING, domainRequest("hang.test", 80)]));
    await readBytes(opening, 2);
    await waitFor(() => server.connections === 2);
    const signal = signals.at(-1);
    const closed = [piped, opening].map((socket) => new Promise((resolve) => socket.once("close", resolve)));
    await server.close();
    await Promise.all(closed);
    assert.equal(server.connections, 0);
    assert.ok(signal?.aborted);
    const late = await rawExchange(server.address.port, [GREETING], 1_000);
    assert.ok(late.closed && late.data.length === 0, "nothing listens any more");
  });
});

/**
 * Chaos harness helper: the target servers and the steady traffic through the SOCKS5 entry.
 *
 * - new connections: `rate` per second, round robin over `classes` SOCKS usernames (each its own
 *   circuit at the entry); each connects to the echo target, sends "ping", must read "pong" within
 *   `timeoutMs`;
 * - long downloads: `downloads` at a time, each on its own username, `seconds` long at
 *   `kibPerSecond`; a download that ends short or errors is broken; a finished one is replaced.
 *
 * Reports JSON lines on stdout: {"ev":"conn","start","end","ok","cls"} and
 * {"ev":"dl","start","end","ok","bytes","cls"}. argv[2]: JSON options. SIGTERM stops it.
 */
import { createServer, type Socket } from "node:net";
import { SocksClient } from "socks";

const o = JSON.parse(process.argv[2] ?? "{}") as {
  socksPort: number;
  rate: number;
  classes: number;
  timeoutMs: number;
  downloads: number;
  seconds: number;
  kibPerSecond: number;
};
const emit = (x: Record<string, unknown>) => process.stdout.write(JSON.stringify(x) + "\n");
const CHUNK = Buffer.alloc(16 * 1024, 0x5a);

function listen(handler: (s: Socket) => void): Promise<number> {
  const server = createServer(handler);
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r((server.address() as { port: number }).port)));
}

const echoPort = await listen((s) => {
  s.on("error", () => {});
  s.once("data", () => s.end("pong\n"));
});
const downloadBytes = o.seconds * o.kibPerSecond * 1024;
const downloadPort = await listen((s) => {
  s.on("error", () => {});
  let sent = 0;
  const perTick = Math.max(1, Math.round((o.kibPerSecond * 1024) / 10));
  const timer = setInterval(() => {
    if (s.destroyed) return clearInterval(timer);
    const n = Math.min(perTick, downloadBytes - sent);
    for (let left = n; left > 0; left -= CHUNK.length) s.write(CHUNK.subarray(0, Math.min(left, CHUNK.length)));
    sent += n;
    if (sent >= downloadBytes) {
      clearInterval(timer);
      s.end();
    }
  }, 100);
  s.on("close", () => clearInterval(timer));
});

const socks = (cls: string, port: number, timeout: number) =>
  SocksClient.createConnection({
    proxy: { host: "127.0.0.1", port: o.socksPort, type: 5, userId: cls, password: "x" },
    command: "connect",
    destination: { host: "127.0.0.1", port },
    timeout,
  });

let stopping = false;
let n = 0;
async function oneConnection(): Promise<void> {
  const cls = `c${n++ % o.classes}`;
  const start = Date.now();
  const deadline = start + o.timeoutMs;
  try {
    const { socket } = await socks(cls, echoPort, o.timeoutMs);
    socket.on("error", () => {});
    const answer = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timeout")), Math.max(1, deadline - Date.now()));
      let got = "";
      socket.on("data", (d: Buffer) => (got += d.toString()));
      socket.on("close", () => {
        clearTimeout(timer);
        resolve(got);
      });
      socket.write("ping\n");
    });
    socket.destroy();
    emit({ ev: "conn", start, end: Date.now(), ok: answer === "pong\n", cls });
  } catch {
    emit({ ev: "conn", start, end: Date.now(), ok: false, cls });
  }
}

async function downloads(slot: number): Promise<void> {
  const cls = `dl${slot}`;
  while (!stopping) {
    const start = Date.now();
    let bytes = 0;
    try {
      const { socket } = await socks(cls, downloadPort, o.timeoutMs);
      await new Promise<void>((resolve) => {
        socket.on("data", (d: Buffer) => (bytes += d.length));
        socket.on("error", () => {});
        socket.on("close", () => resolve());
      });
    } catch {
      // counted below as broken (0 or few bytes)
    }
    if (stopping) return;
    emit({ ev: "dl", start, end: Date.now(), ok: bytes === downloadBytes, bytes, cls });
    if (bytes !== downloadBytes) await new Promise((r) => setTimeout(r, 200));
  }
}

for (let i = 0; i < o.downloads; i++) void downloads(i);
const timer = setInterval(() => void oneConnection(), 1000 / o.rate);
emit({ ev: "ready" });
process.on("SIGTERM", () => {
  stopping = true;
  clearInterval(timer);
  setTimeout(() => process.exit(0), 50);
});

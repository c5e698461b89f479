/**
 * Chaos harness helper: a delaying TCP shim in front of every relay (loopback mode). Each relay's
 * descriptor names its shim's port, so every link to that relay (from the entry and from other
 * relays) crosses it. Commands on stdin (one JSON object a line) set, per relay, an added one-way
 * delay and an emulated loss: TCP on loopback never loses a segment, so a "lost" chunk is held for
 * `stallMs` (a retransmission timeout) before it goes, which is what loss looks like above TCP.
 *
 *   argv[2]: JSON [{ "name": "r1", "listen": 41001, "target": 42001 }, ...]
 *   stdin:   {"name":"r1","delayMs":300,"lossRate":0,"stallMs":0}
 *   stdout:  "ready" once every shim listens
 *
 * A close or error on one side destroys the other at once, so a crashed relay looks crashed.
 */
import { connect, createServer, type Socket } from "node:net";
import { createInterface } from "node:readline";

interface Impairment {
  delayMs: number;
  lossRate: number;
  stallMs: number;
}

const MAX_QUEUED = 4 * 1024 * 1024;
const shims = JSON.parse(process.argv[2] ?? "[]") as { name: string; listen: number; target: number }[];
const impairments = new Map<string, Impairment>();
for (const s of shims) impairments.set(s.name, { delayMs: 0, lossRate: 0, stallMs: 0 });

/**
 * Copies `from` to `to` under `name`'s impairment, in order, with back-pressure. Delayed chunks wait
 * in one FIFO drained by one timer: separate timers per chunk could fire out of order and corrupt
 * the byte stream (which the link's AEAD would then report as an attack).
 */
function forward(name: string, from: Socket, to: Socket): void {
  const queue: { at: number; chunk: Buffer }[] = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  const drain = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length > 0 && (queue[0] as { at: number }).at <= now) {
      const { chunk } = queue.shift() as { at: number; chunk: Buffer };
      queued -= chunk.length;
      if (!to.destroyed && !to.write(chunk)) from.pause();
    }
    if (queue.length > 0) timer = setTimeout(drain, (queue[0] as { at: number }).at - now);
    if (queued <= MAX_QUEUED && to.writableLength === 0) from.resume();
  };
  from.on("data", (chunk: Buffer) => {
    const imp = impairments.get(name) as Impairment;
    if (imp.delayMs === 0 && imp.lossRate === 0 && queue.length === 0) {
      if (!to.write(chunk)) from.pause();
      return;
    }
    const now = Date.now();
    const stall = imp.lossRate > 0 && Math.random() < imp.lossRate ? imp.stallMs : 0;
    // Never earlier than the chunk before it: TCP delivers in order, a "lost" segment holds the rest.
    const at = Math.max(queue.at(-1)?.at ?? 0, now + imp.delayMs + stall);
    queue.push({ at, chunk });
    queued += chunk.length;
    if (queued > MAX_QUEUED) from.pause();
    if (timer === undefined) timer = setTimeout(drain, at - now);
  });
  to.on("drain", () => {
    if (queued <= MAX_QUEUED) from.resume();
  });
  to.on("close", () => {
    if (timer) clearTimeout(timer);
  });
}

let listening = 0;
for (const s of shims) {
  const server = createServer((client) => {
    const upstream = connect({ host: "127.0.0.1", port: s.target });
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const sock of [client, upstream]) {
      sock.setNoDelay(true);
      sock.on("error", kill);
      sock.on("close", kill);
      sock.on("end", kill);
    }
    forward(s.name, client, upstream);
    forward(s.name, upstream, client);
  });
  server.listen(s.listen, "127.0.0.1", () => {
    if (++listening === shims.length) process.stdout.write("ready\n");
  });
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = JSON.parse(line) as Partial<Impairment> & { name: string };
  const imp = impairments.get(cmd.name);
  if (!imp) return;
  imp.delayMs = cmd.delayMs ?? 0;
  imp.lossRate = cmd.lossRate ?? 0;
  imp.stallMs = cmd.stallMs ?? 0;
});
process.stdin.on("end", () => process.exit(0));

/** Test fixtures for the data plane: relays on 127.0.0.1, a local HTTP server, hashing. */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { generateStaticKeys, initCrypto } from "../../relayer/src/crypto/keys.ts";
import { parseDescriptor } from "../../relayer/src/node/directory.ts";
import type { DirectoryEntry } from "../../relayer/src/node/directory.ts";
import { startRelay } from "../../relayer/src/node/relay.ts";
import type { RelayNode, RelayNodeOptions } from "../../relayer/src/node/relay.ts";
import type { HopInfo } from "../../relayer/src/circuit/client.ts";
import type { Target } from "../../relayer/src/wire/cell.ts";

/** A direct loopback connector standing in for the exit policy in circuit-level tests. */
export function loopbackTarget(target: Target): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

export async function startRelays(count: number, extra: Partial<RelayNodeOptions> = {}): Promise<RelayNode[]> {
  await initCrypto();
  const relays: RelayNode[] = [];
  for (let i = 0; i < count; i++) {
    relays.push(
      await startRelay({
        host: "127.0.0.1",
        port: 0,
        keys: generateStaticKeys(),
        openTarget: loopbackTarget,
        ...extra,
      }),
    );
  }
  return relays;
}

export function hopsOf(relays: RelayNode[]): HopInfo[] {
  return relays.map((r) => ({ host: r.host, port: r.port, keys: r.keys }));
}

/** An HTTP server on 127.0.0.1 serving `size` deterministic bytes at /blob/<size>. */
export async function startBlobServer(port = 0): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url === "/hold") return void res.writeHead(200).flushHeaders(); // an idle open stream
    const size = Number((req.url ?? "").split("/")[2] ?? 0);
    if (!Number.isSafeInteger(size) || size < 0 || size > 1 << 30) {
      res.writeHead(400).end();
      return;
    }
    res.writeHead(200, { "content-length": size, "content-type": "application/octet-stream" });
    const chunk = blobChunk();
    let left = size;
    const write = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(chunk.subarray(0, n))) return void res.once("drain", write);
      }
      res.end();
    };
    write();
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // held-open responses (/hold) must not keep the test alive
      }),
  };
}

let chunkCache: Buffer | undefined;
/** 64 KiB of pseudo-random bytes (fixed), repeated to make blobs. */
export function blobChunk(): Buffer {
  if (!chunkCache) {
    const parts: Buffer[] = [];
    for (let i = 0; i < 2048; i++) parts.push(createHash("sha256").update(`x0t-${i}`).digest());
    chunkCache = Buffer.concat(parts);
  }
  return chunkCache;
}

export function expectedSha256(size: number): string {
  const h = createHash("sha256");
  const chunk = blobChunk();
  for (let left = size; left > 0; left -= chunk.length) h.update(chunk.subarray(0, Math.min(left, chunk.length)));
  return h.digest("hex");
}

/** A relay in its own process (`x0t relay`), so that a test can freeze it with SIGSTOP. */
export interface ChildRelay {
  readonly entry: DirectoryEntry;
  readonly child: ChildProcess;
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

const CLI = fileURLToPath(new URL("../../relayer/src/cli.ts", import.meta.url));

/**
 * Starts `x0t relay` as a child process on 127.0.0.1 (an exit that may reach loopback targets)
 * and resolves once its descriptor is written (bounded: 20 s).
 */
export async function spawnRelay(dir: string, name: string): Promise<ChildRelay> {
  const descriptor = join(dir, "relays", `${name}.json`);
  const child = spawn(
    process.execPath,
    [
      CLI,
      "relay",
      "--listen",
      "127.0.0.1:0",
      "--keys",
      join(dir, `${name}.key`),
      "--name",
      name,
      "--exit",
      "--allow-loopback-targets",
      "--descriptor-out",
      descriptor,
    ],
    { stdio: ["ignore", "ignore", "ignore"], env: { ...process.env, X0T_LOG_LEVEL: "error" } },
  );
  let exited = false;
  child.once("exit", () => (exited = true));
  for (let i = 0; i < 200 && !existsSync(descriptor); i++) {
    if (exited) throw new Error(`relay ${name} exited at start-up`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const entry = parseDescriptor(JSON.parse(readFileSync(descriptor, "utf8")) as unknown, descriptor);
  return {
    entry,
    child,
    freeze: () => child.kill("SIGSTOP"),
    thaw: () => child.kill("SIGCONT"),
    stop: async () => {
      if (exited) return;
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGCONT");
      child.kill("SIGKILL");
      await gone;
    },
  };
}

/** Writes "ping" on a stream and resolves with what comes back before the target ends it. */
export async function ping(stream: Duplex): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    stream.once("end", resolve);
    stream.once("error", reject);
  });
  stream.write("ping\n");
  await ended;
  stream.destroy();
  return Buffer.concat(chunks).toString();
}

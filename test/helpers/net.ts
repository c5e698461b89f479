/**
 * Loopback-only network helpers for relayer tests: small target servers, a raw SOCKS exchange
 * and curl. Every wait is bounded so that a bug shows up as a failure, not a hung run.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { type AddressInfo, type Server, type Socket, connect, createServer } from "node:net";

export const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

export function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

/** Closes a server; an HTTP server's keep-alive connections are closed too, or close() would wait. */
export function closeServer(server: Server & { closeAllConnections?: () => void }): Promise<void> {
  server.closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Echoes what it receives and ends its side when the client ends (half-close aware). */
export function echoServer(): Server {
  return createServer({ allowHalfOpen: true }, (socket) => {
    socket.on("error", () => {});
    socket.pipe(socket);
  });
}

/** Reads until EOF, then answers `got:<bytes>` and ends: needs the proxy to pass half-close on. */
export function halfCloseServer(): Server {
  return createServer({ allowHalfOpen: true }, (socket) => {
    socket.on("error", () => {});
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => socket.end(Buffer.concat([Buffer.from("got:"), ...chunks])));
  });
}

/** A free loopback port with nothing listening on it (for "connection refused"). */
export async function closedPort(host = "127.0.0.1"): Promise<number> {
  const server = createServer();
  const port = await listen(server, host);
  await closeServer(server);
  return port;
}

export type RawResult = { data: Buffer; ended: boolean; closed: boolean };

/**
 * Connects to 127.0.0.1:`port`, writes `send` (one write per element), collects everything until
 * the server closes or `timeoutMs` passes.
 */
export function rawExchange(port: number, send: Uint8Array[], timeoutMs = 3_000): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    let ended = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data: Buffer.concat(chunks), ended, closed: false });
    }, timeoutMs);
    socket.on("connect", () => {
      for (const part of send) socket.write(part);
    });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => (ended = true));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), ended, closed: true });
    });
  });
}

/** Waits for `bytes` bytes on `socket` (bounded). */
export function readBytes(socket: Socket, bytes: number, timeoutMs = 3_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`timed out with ${got.length}/${bytes} bytes`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= bytes) done();
    };
    const onClose = () => done(new Error(`closed with ${got.length}/${bytes} bytes`));
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (error) reject(error);
      else resolve(got);
    };
    socket.on("data", onData);
    socket.on("close", onClose);
  });
}

export type CurlResult = { code: number; stdout: Buffer; stderr: string };

/** Runs /usr/bin/curl with a 20 s ceiling; never rejects, returns the exit code. */
export function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile(
      "/usr/bin/curl",
      ["-sS", "--max-time", "15", ...args],
      { encoding: "buffer", maxBuffer: 64 * 1024 * 1024, timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr: stderr.toString() });
      },
    );
  });
}

/** Polls `condition` every 10 ms for at most `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 3_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A TCP port free on 127.0.0.1 now (for servers a test starts in another process). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

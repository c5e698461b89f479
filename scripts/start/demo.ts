/**
 * The demo page `npm start` serves on loopback, and the fetch through the SOCKS5 entry that tells
 * it the network works end to end (what the printed curl line does).
 */
import { createServer } from "node:http";
import { SocksClient } from "socks";
import { StepError } from "./progress.ts";

export const DEMO_TEXT = "hello from x0tta6bl4: this page came to you through a 3-hop post-quantum circuit";

export function startDemoServer(port: number): Promise<{ close: () => void }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    res.end(`${DEMO_TEXT}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (error) =>
      reject(new StepError("demo web page", `port ${port} is taken (X0T_DEMO_PORT moves it)`, [], { cause: error })),
    );
    server.listen(port, "127.0.0.1", () => resolve({ close: () => server.close() }));
  });
}

/** GET the demo page on 127.0.0.1:`demoPort` through the SOCKS5 entry on `socksPort`, once. */
export async function fetchThroughEntry(socksPort: number, demoPort: number): Promise<string> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: "127.0.0.1", port: socksPort, type: 5 },
    command: "connect",
    destination: { host: "127.0.0.1", port: demoPort },
    timeout: 10_000,
  });
  socket.write(`GET / HTTP/1.0\r\nHost: 127.0.0.1:${demoPort}\r\n\r\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

/** A TCP port free on loopback now (the relays' endpoints are registered before they listen). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port")),
      );
    });
  });
}

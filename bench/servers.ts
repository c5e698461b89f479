/**
 * Helper processes for the benchmark, one job each so that no two share an event loop:
 *   blob <port>                 HTTP server of deterministic bytes (/blob/<size>, /hold)
 *   pipe <port> <targetPort>    plain TCP forwarder (socket.pipe both ways): the unencrypted baseline
 *   socks-direct <port>         our SOCKS5 server whose streams go straight to the target (no circuit)
 * Each prints "ready <port>" once listening and runs until killed. Loopback only.
 */
import { createServer, connect } from "node:net";
import type { AddressInfo } from "node:net";
import { connectTarget, createExitPolicy } from "../relayer/src/exit/index.ts";
import { startSocksServer } from "../relayer/src/socks/index.ts";
import { startBlobServer } from "../test/relayer/helpers.ts";

const [mode, portArg, targetArg] = process.argv.slice(2);
const port = Number(portArg ?? 0);

if (mode === "blob") {
  const server = await startBlobServer(port);
  console.log(`ready ${server.port}`);
} else if (mode === "pipe") {
  const target = Number(targetArg);
  const server = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ host: "127.0.0.1", port: target, noDelay: true });
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  server.listen(port, "127.0.0.1", () => console.log(`ready ${(server.address() as AddressInfo).port}`));
} else if (mode === "socks-direct") {
  const policy = createExitPolicy({ allowPrivateTargets: true });
  const server = await startSocksServer({
    port,
    openStream: async (req, signal) => ({ stream: await connectTarget(req.target, policy, { signal }) }),
  });
  console.log(`ready ${server.address.port}`);
} else {
  console.error("usage: servers.ts blob|pipe|socks-direct <port> [targetPort]");
  process.exit(2);
}

/**
 * A four-node x0tta6bl4 network started through deploy/node/entrypoint.ts's environment — two
 * relays in different regions, an exit and the SOCKS5 entry — by any launcher: plain processes
 * (what systemd runs) or containers. Then the README's curl goes through it to a page on loopback.
 * Every wait is bounded.
 */
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { closedPort, curl } from "../helpers/net.ts";

export const PAGE = "x0tta6bl4 ops: through three hops\n";

export interface Launched {
  /** Everything the node wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}
export type Launcher = (name: string, env: Record<string, string>) => Promise<Launched>;

export async function startPage(): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end(PAGE));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

async function waitFor(what: string, ok: () => boolean, timeoutMs: number, detail: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts relay-1 (DE), relay-2 (FR), exit-1 (NL, loopback targets allowed) and entry-1 in
 * `dataDir` (their X0T_DATA, as the launcher maps it), waits for the descriptors, then curls
 * `http://127.0.0.1:<pagePort>/` through the entry (retrying while the first circuit builds).
 */
export async function runNetwork(
  launch: Launcher,
  dataDir: string,
  pagePort: number,
  nodes: Launched[],
): Promise<{ body: string; socksPort: number }> {
  const relays: [string, string, Record<string, string>][] = [
    ["relay-1", "DE", {}],
    ["relay-2", "FR", {}],
    ["exit-1", "NL", { NODE_ROLE: "exit", EXIT_ALLOW_LOOPBACK_TARGETS: "1" }],
  ];
  for (const [name, region, extra] of relays) {
    const port = await closedPort();
    nodes.push(
      await launch(name, {
        NODE_ID: name,
        LISTEN_HOST: "127.0.0.1",
        LISTEN_PORT: String(port),
        ADVERTISE_HOST: "127.0.0.1",
        REGION: region,
        ...extra,
      }),
    );
  }
  await waitFor(
    "three relay descriptors",
    () => relays.every(([name]) => existsSync(join(dataDir, "relays", `${name}.json`))),
    60_000,
    () => nodes.map((n) => n.output()).join("\n---\n"),
  );
  const socksPort = await closedPort();
  const entry = await launch("entry-1", {
    NODE_ID: "entry-1",
    NODE_ROLE: "entry",
    SOCKS_HOST: "127.0.0.1",
    SOCKS_PORT: String(socksPort),
    HOPS: "3",
  });
  nodes.push(entry);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const result = await curl(["-x", `socks5h://127.0.0.1:${socksPort}`, `http://127.0.0.1:${pagePort}/`]);
    if (result.code === 0) return { body: result.stdout.toString(), socksPort };
    if (Date.now() > deadline)
      throw new Error(
        `no page through the entry: curl exit ${result.code}: ${result.stderr}\n${nodes.map((n) => n.output()).join("\n---\n")}`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Descriptor distribution: bootstrap nodes that exchange verified descriptors (store.ts) over
 * plain HTTP (`GET`/`POST /v1/descriptors`, JSON). Descriptors authenticate themselves by
 * signature (descriptor.ts), so the transport needs no authentication of its own: a bootstrap node
 * that lies can only withhold descriptors, never forge one. Relays publish their descriptor to the
 * bootstrap nodes; entries pull from them; bootstrap nodes push to and pull from each other.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import type { DropReason, SignedNodeDescriptor } from "./descriptor.ts";
import { type DescriptorStore, MAX_DESCRIPTORS } from "./store.ts";

export { DescriptorStore, MAX_DESCRIPTORS } from "./store.ts";

/** Largest request or response body (bytes). */
export const MAX_BODY = 4 * 1024 * 1024;
/** How long one gossip request may take. */
export const REQUEST_TIMEOUT_MS = 5_000;

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new RangeError(`body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Offers every descriptor of a JSON array to `store`; returns accepted count and drops by reason. */
async function offerAll(store: DescriptorStore, list: unknown, source: string) {
  if (!Array.isArray(list)) throw new TypeError("expected a JSON array of descriptors");
  if (list.length > MAX_DESCRIPTORS) throw new RangeError(`more than ${MAX_DESCRIPTORS} descriptors`);
  let accepted = 0;
  const dropped: Partial<Record<DropReason, number>> = {};
  for (const value of list) {
    const verdict = await store.offer(value, source);
    if (verdict.ok) accepted++;
    else dropped[verdict.reason] = (dropped[verdict.reason] ?? 0) + 1;
  }
  return { accepted, dropped };
}

/** GETs a peer's descriptors and offers them to `store`. */
export async function pullDescriptors(store: DescriptorStore, url: string) {
  const res = await fetch(new URL("/v1/descriptors", url), { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const text = await res.text();
  if (text.length > MAX_BODY) throw new RangeError(`${url}: answer over ${MAX_BODY} bytes`);
  return offerAll(store, JSON.parse(text) as unknown, url);
}

/** POSTs descriptors (a relay's own, or a store's) to a bootstrap node. */
export async function pushDescriptors(url: string, descriptors: readonly SignedNodeDescriptor[]) {
  const res = await fetch(new URL("/v1/descriptors", url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(descriptors),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as { accepted: number; dropped: Partial<Record<DropReason, number>> };
}

export interface GossipNodeOptions {
  host: string;
  port: number;
  store: DescriptorStore;
  /** Base URLs of the other bootstrap nodes ("http://127.0.0.1:7001"). */
  peers?: readonly string[];
  /** Push to and pull from every peer this often (default 30 s); 0: only on `gossipOnce()`. */
  intervalMs?: number;
  logger?: Logger;
}

export interface GossipNode {
  readonly url: string;
  readonly store: DescriptorStore;
  /** One round with every peer: push ours, pull theirs; failures are logged and counted. */
  gossipOnce(): Promise<{ ok: number; failed: number }>;
  close(): Promise<void>;
}

/** A bootstrap node: serves and accepts descriptors, and gossips them with its peers. */
export async function startGossipNode(options: GossipNodeOptions): Promise<GossipNode> {
  const log = options.logger ?? silentLogger;
  const store = options.store;
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.url !== "/v1/descriptors") return reply(404, { error: "not found" });
    if (req.method === "GET") return reply(200, store.descriptors());
    if (req.method !== "POST") return reply(405, { error: "GET or POST" });
    const from = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    readBody(req)
      .then((body) => offerAll(store, JSON.parse(body.toString("utf8")) as unknown, from))
      .then(
        (result) => reply(200, result),
        (error: Error) => reply(400, { error: error.message.slice(0, 200) }),
      );
  });
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const peers = (options.peers ?? []).filter((p) => p !== url);

  const gossipOnce = async () => {
    let ok = 0;
    let failed = 0;
    await store.revalidate();
    for (const peer of peers) {
      try {
        await pushDescriptors(peer, store.descriptors());
        await pullDescriptors(store, peer);
        ok++;
      } catch (error) {
        failed++;
        log.warn("gossip with a peer failed", { peer, error: (error as Error).message });
      }
    }
    return { ok, failed };
  };
  const interval = options.intervalMs ?? 30_000;
  let round: Promise<unknown> = Promise.resolve();
  const timer =
    interval > 0
      ? setInterval(() => {
          round = round.then(gossipOnce, () => {});
        }, interval)
      : undefined;
  timer?.unref();
  log.info("bootstrap node listening", { url, peers: peers.length });
  return {
    url,
    store,
    gossipOnce,
    close: async () => {
      if (timer) clearInterval(timer);
      await round.catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * Descriptor distribution: bootstrap nodes that exchange signed descriptors over plain HTTP
 * (`GET`/`POST /v1/descriptors`, JSON) and keep them in a store (store.ts). Descriptors
 * authenticate themselves by signature (descriptor.ts, verify.ts), so the transport needs no authentication
 * of its own: a bootstrap node that lies can only withhold descriptors, never forge one. Relays
 * publish their descriptor to the bootstrap nodes; entries pull from them; bootstrap nodes push to
 * and pull from each other.
 *
 * Both ends treat the other as hostile: a body is read as a stream and cut off at a byte cap
 * (before anything is parsed), redirects are refused, every request has a deadline, and the server
 * cuts slow senders within about a second of their deadline and takes one POST per address at a time.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { MAX_DESCRIPTOR_JSON_BYTES, type SignedNodeDescriptor } from "./descriptor.ts";
import { coalesce } from "./rounds.ts";
import { type DescriptorStore, type DropCounts, formatDrops, MAX_DESCRIPTORS } from "./store.ts";

export { DescriptorStore, MAX_DESCRIPTORS } from "./store.ts";

/**
 * Largest request or response body, bytes: a full store's worth of the largest descriptors
 * (MAX_DESCRIPTORS × MAX_DESCRIPTOR_JSON_BYTES, ~9 MB) and the array's commas and brackets, so
 * that a pull of a full store always fits (4 MiB stopped at ~1,950 relays of ~2.15 KB each).
 */
export const MAX_BODY = MAX_DESCRIPTORS * (MAX_DESCRIPTOR_JSON_BYTES + 1) + 2;
/** Largest answer to a POST (`{accepted, dropped}`). */
export const MAX_ANSWER = 64 * 1024;
/** How long one gossip request may take, body included. */
export const REQUEST_TIMEOUT_MS = 5_000;
/** How often the server looks for requests past their header or request deadline (Node: 30 s). */
export const CONNECTIONS_CHECK_MS = 1_000;
/** Open connections a bootstrap node accepts; more are closed at once. */
export const MAX_CONNECTIONS = 256;
/** POST bodies read at once (each up to MAX_BODY), and per remote address. */
export const MAX_CONCURRENT_POSTS = 8;

/** A peer's answer could not be used: too large, redirected, not JSON, an HTTP error. */
export class GossipResponseError extends Error {
  override name = "GossipResponseError";
}

/** Reads `res`'s body, at most `cap` bytes: more (announced or sent) aborts the request. */
async function readCapped(res: Response, cap: number, url: string, abort: AbortController): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? Number.NaN);
  if (declared > cap) {
    abort.abort();
    throw new GossipResponseError(`${url}: answer of ${declared} bytes is over the ${cap}-byte cap; not read`);
  }
  const reader = res.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > cap) {
      abort.abort();
      await reader.cancel().catch(() => {});
      throw new GossipResponseError(`${url}: answer cut off at the ${cap}-byte cap`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** One request to a peer: deadline, no redirects, the answer's JSON read within `cap` bytes. */
async function request(url: string, init: RequestInit, cap: number): Promise<unknown> {
  const target = new URL("/v1/descriptors", url);
  const abort = new AbortController();
  let res: Response;
  try {
    res = await fetch(target, {
      ...init,
      redirect: "error",
      signal: AbortSignal.any([abort.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
    });
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause;
    throw new GossipResponseError(`${url}: ${cause?.message ?? (error as Error).message}`, { cause: error });
  }
  try {
    if (!res.ok) throw new GossipResponseError(`${url}: HTTP ${res.status}`);
    const text = await readCapped(res, cap, url, abort);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new GossipResponseError(`${url}: answer is not JSON`);
    }
  } finally {
    abort.abort(); // a body left unread must not keep the connection
  }
}

/** Offers every descriptor of a JSON array to `store`; returns accepted count and drops by reason. */
async function offerAll(store: DescriptorStore, list: unknown, source: string) {
  if (!Array.isArray(list)) throw new TypeError("expected a JSON array of descriptors");
  if (list.length > MAX_DESCRIPTORS) throw new RangeError(`more than ${MAX_DESCRIPTORS} descriptors`);
  let accepted = 0;
  const dropped: DropCounts = {};
  for (const value of list) {
    const verdict = await store.offer(value, source);
    if (verdict.ok) accepted++;
    else dropped[verdict.reason] = (dropped[verdict.reason] ?? 0) + 1;
  }
  return { accepted, dropped };
}

/**
 * GETs a peer's descriptors (at most MAX_BODY bytes) and offers them to `store`; descriptors the
 * store dropped are logged on `log` as one WARN line with the counts by reason.
 */
export async function pullDescriptors(store: DescriptorStore, url: string, log: Logger = silentLogger) {
  const pulled = await offerAll(store, await request(url, {}, MAX_BODY), url);
  if (Object.keys(pulled.dropped).length > 0)
    log.warn("descriptors pulled, some dropped", {
      url,
      accepted: pulled.accepted,
      dropped: formatDrops(pulled.dropped),
    });
  return pulled;
}

/** POSTs descriptors (a relay's own, or a store's) to a bootstrap node. */
export async function pushDescriptors(url: string, descriptors: readonly SignedNodeDescriptor[]) {
  const answer = await request(
    url,
    { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(descriptors) },
    MAX_ANSWER,
  );
  return answer as { accepted: number; dropped: DropCounts };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  if (declared > MAX_BODY) throw new RangeError(`body over ${MAX_BODY} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new RangeError(`body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
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
  const posting = new Set<string>();
  const server: Server = createServer(
    {
      headersTimeout: REQUEST_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      // Node checks both deadlines only this often (30 s by default): a slowloris held a
      // connection for up to 35 s instead of 5.
      connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
    },
    (req, res) => {
      const reply = (status: number, body: unknown) => {
        if (res.headersSent) return;
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.url !== "/v1/descriptors") return reply(404, { error: "not found" });
      if (req.method === "GET") return reply(200, store.descriptors());
      if (req.method !== "POST") return reply(405, { error: "GET or POST" });
      const address = req.socket.remoteAddress ?? "?";
      if (posting.has(address) || posting.size >= MAX_CONCURRENT_POSTS) {
        res.setHeader("connection", "close");
        return reply(429, { error: "one POST at a time per address; try again later" });
      }
      posting.add(address);
      res.once("close", () => posting.delete(address));
      const from = `${address}:${req.socket.remotePort}`;
      readBody(req)
        .then((body) => offerAll(store, JSON.parse(body.toString("utf8")) as unknown, from))
        .then(
          (result) => {
            const fields = { source: from, accepted: result.accepted, dropped: formatDrops(result.dropped) };
            if (Object.keys(result.dropped).length > 0) log.warn("descriptors offered, some dropped", fields);
            else log.debug("descriptors offered", fields);
            reply(200, result);
          },
          (error: Error) => {
            log.warn("descriptors refused", { source: from, error: error.message.slice(0, 200) });
            res.setHeader("connection", "close");
            reply(400, { error: error.message.slice(0, 200) });
          },
        );
    },
  );
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const peers = (options.peers ?? []).filter((p) => p !== url);

  const gossipOnce = coalesce(async () => {
    let ok = 0;
    let failed = 0;
    await store.revalidate();
    for (const peer of peers) {
      try {
        await pushDescriptors(peer, store.descriptors());
        await pullDescriptors(store, peer, log);
        ok++;
      } catch (error) {
        failed++;
        log.warn("gossip with a peer failed", { peer, error: (error as Error).message });
      }
    }
    return { ok, failed };
  });
  const interval = options.intervalMs ?? 30_000;
  let round: Promise<unknown> = Promise.resolve();
  const timer =
    interval > 0
      ? setInterval(() => {
          round = gossipOnce().catch(() => {});
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

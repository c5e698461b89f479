/**
 * Descriptor distribution: a store of verified descriptors, and bootstrap nodes that exchange them
 * over plain HTTP (`GET`/`POST /v1/descriptors`, JSON). Descriptors authenticate themselves by
 * signature (descriptor.ts), so the transport needs no authentication of its own: a bootstrap node
 * that lies can only withhold descriptors, never forge one. Relays publish their descriptor to the
 * bootstrap nodes; entries pull from them; bootstrap nodes push to and pull from each other.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { DirectoryEntry } from "../node/directory.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import {
  type DropReason,
  type SignedNodeDescriptor,
  type Verdict,
  type VerifiedNode,
  type VerifyContext,
  verifyDescriptor,
} from "./descriptor.ts";

/** Largest request or response body (bytes) and most descriptors in one. */
export const MAX_BODY = 4 * 1024 * 1024;
export const MAX_DESCRIPTORS = 2_000;
/** How long one gossip request may take. */
export const REQUEST_TIMEOUT_MS = 5_000;

export interface DescriptorStoreOptions {
  /** The verification context at a given time (seconds): domain and trust anchors. */
  context: (nowSeconds: number) => VerifyContext;
  now?: () => number;
  /** Most operators kept (default MAX_DESCRIPTORS). */
  maxEntries?: number;
  logger?: Logger;
}

/** Verified descriptors, newest per operator; drops are logged with their reason and counted. */
export class DescriptorStore {
  readonly #nodes = new Map<string, VerifiedNode>();
  readonly #context: DescriptorStoreOptions["context"];
  readonly #now: () => number;
  readonly #max: number;
  readonly #log: Logger;
  /** Drops by reason since start (a counter for metrics). */
  readonly dropped: Partial<Record<DropReason, number>> = {};
  accepted = 0;

  constructor(options: DescriptorStoreOptions) {
    this.#context = options.context;
    this.#now = options.now ?? Date.now;
    this.#max = options.maxEntries ?? MAX_DESCRIPTORS;
    this.#log = options.logger ?? silentLogger;
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }

  /** Verifies `value` and keeps it if it is the newest descriptor of its operator. */
  async offer(value: unknown, source: string): Promise<Verdict> {
    const verdict = await verifyDescriptor(value, this.#context(this.#seconds()));
    if (!verdict.ok) {
      this.dropped[verdict.reason] = (this.dropped[verdict.reason] ?? 0) + 1;
      const operator = (value as { operator?: unknown } | null)?.operator;
      this.#log.warn("descriptor dropped", {
        reason: verdict.reason,
        detail: verdict.detail,
        source,
        operator: typeof operator === "string" ? operator.slice(0, 42) : undefined,
      });
      return verdict;
    }
    const key = verdict.node.descriptor.operator.toLowerCase();
    const held = this.#nodes.get(key);
    if (held && held.descriptor.notBefore >= verdict.node.descriptor.notBefore) {
      if (held.descriptor.signature !== verdict.node.descriptor.signature)
        this.dropped.stale = (this.dropped.stale ?? 0) + 1;
      return verdict;
    }
    if (!held && this.#nodes.size >= this.#max) {
      this.#log.warn("descriptor store full: descriptor ignored", { source, max: this.#max });
      return { ok: false, reason: "stale", detail: "store full" };
    }
    this.#nodes.set(key, verdict.node);
    this.accepted++;
    this.#log.info("descriptor accepted", {
      operator: verdict.node.descriptor.operator,
      nickname: verdict.node.descriptor.nickname,
      anchor: verdict.node.anchor,
      source,
    });
    return verdict;
  }

  /**
   * Verifies every held descriptor again (stake may have gone, the validity may have ended) and
   * drops those that fail; returns how many went.
   */
  async revalidate(): Promise<number> {
    let gone = 0;
    for (const [key, node] of [...this.#nodes]) {
      const verdict = await verifyDescriptor(node.descriptor, this.#context(this.#seconds()));
      if (verdict.ok) continue;
      this.#nodes.delete(key);
      this.dropped[verdict.reason] = (this.dropped[verdict.reason] ?? 0) + 1;
      this.#log.warn("descriptor withdrawn", { reason: verdict.reason, operator: node.descriptor.operator });
      gone++;
    }
    return gone;
  }

  /** The signed descriptors held, still valid now. */
  descriptors(): SignedNodeDescriptor[] {
    const now = this.#seconds();
    return [...this.#nodes.values()].filter((n) => n.descriptor.notAfter >= now).map((n) => n.descriptor);
  }

  /** Directory entries for route choice (what `startEntry({ directory })` reads). */
  entries(): DirectoryEntry[] {
    const now = this.#seconds();
    return [...this.#nodes.values()].filter((n) => n.descriptor.notAfter >= now).map((n) => n.entry);
  }

  get size(): number {
    return this.#nodes.size;
  }
}

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

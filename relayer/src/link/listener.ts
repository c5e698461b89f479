/**
 * Accepts links on a relay's port: limits handshakes per second per source address and open
 * connections in total, and hands each handshaken link to the owner. A failed handshake closes
 * that socket only.
 */
import { createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import type { StaticKeys } from "../crypto/keys.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { Link } from "./link.ts";
import type { LinkOptions } from "./link.ts";

export interface LinkListenerOptions extends LinkOptions {
  host: string;
  port: number;
  keys: StaticKeys;
  onLink: (link: Link) => void;
  /** Handshakes accepted per second from one source address (burst = 2x). Default 50. */
  handshakesPerSecond?: number;
  /** Open sockets at most. Default 4096. */
  maxConnections?: number;
  logger?: Logger;
}

export interface LinkListener {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/** Token buckets per source, bounded: the oldest sources are forgotten first. */
class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly rate: number;
  constructor(rate: number) {
    this.rate = rate;
  }
  take(source: string, now = Date.now()): boolean {
    const b = this.buckets.get(source) ?? { tokens: this.rate * 2, at: now };
    b.tokens = Math.min(this.rate * 2, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    this.buckets.delete(source);
    this.buckets.set(source, b);
    if (this.buckets.size > 10_000) this.buckets.delete(this.buckets.keys().next().value as string);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

export function listenForLinks(options: LinkListenerOptions): Promise<LinkListener> {
  const log = options.logger ?? silentLogger;
  const limiter = new RateLimiter(options.handshakesPerSecond ?? 50);
  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    const source = socket.remoteAddress ?? "?";
    if (sockets.size > (options.maxConnections ?? 4096) || !limiter.take(source)) {
      log.warn("link refused: rate or connection limit", { limit: "handshake" });
      socket.destroy();
      return;
    }
    Link.accept(socket, options.keys, options).then(
      (link) => options.onLink(link),
      (error: Error) => log.info("link handshake failed", { error: error.message }),
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      const addr = server.address() as AddressInfo;
      resolve({
        address: { host: addr.address, port: addr.port },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

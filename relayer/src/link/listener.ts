/**
 * Accepts links on a relay's port and decides who may start a handshake (admission), then hands
 * each handshaken link to the owner. A failed handshake closes that socket only.
 *
 * Admission is by network prefix, not by address: one host owns a whole IPv6 /64 and any attacker
 * with a few IPv4 addresses usually has them in one /24, so per-address limits multiply with the
 * addresses an attacker holds. A connection that has not finished its handshake costs a socket and
 * a timer and proves nothing, so those are capped per prefix and overall and must finish quickly;
 * established links (a completed hybrid handshake against our keys) count only against the total.
 */
import { createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import type { StaticKeys } from "../crypto/keys.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { parseIPv4, parseIPv6 } from "../wire/ip.ts";
import { Link } from "./link.ts";
import type { LinkOptions } from "./link.ts";

export interface AdmissionLimits {
  /** Handshakes started per second per source prefix (/24, /64); burst 2x. Default 50. */
  handshakesPerSecond: number;
  /** Connections still in their handshake from one prefix at once. Default 16. */
  handshakingPerPrefix: number;
  /** Connections still in their handshake at once, all prefixes. Default 256. */
  handshakingTotal: number;
  /** Open sockets at most, links included. Default 4096. */
  maxConnections: number;
  /** An accepted connection must finish its handshake within this. Default 3 s. */
  handshakeTimeoutMs: number;
  /** At most one refusal log line per this interval, carrying the counts since the last. Default 10 s. */
  refusalLogIntervalMs: number;
}

export const DEFAULT_ADMISSION: AdmissionLimits = {
  handshakesPerSecond: 50,
  handshakingPerPrefix: 16,
  handshakingTotal: 256,
  maxConnections: 4096,
  handshakeTimeoutMs: 3_000,
  refusalLogIntervalMs: 10_000,
};

export type RefusalReason = "rate" | "prefixHandshakes" | "handshakes" | "connections";

export interface LinkListenerOptions extends Omit<LinkOptions, "handshakeTimeoutMs"> {
  host: string;
  port: number;
  keys: StaticKeys;
  onLink: (link: Link) => void;
  admission?: Partial<AdmissionLimits>;
  /** Same as admission.handshakesPerSecond (kept for callers of the first version). */
  handshakesPerSecond?: number;
  logger?: Logger;
}

export interface LinkListener {
  readonly address: { host: string; port: number };
  /** Counters since start: links accepted, connections refused by reason, handshakes running. */
  stats(): { accepted: number; refused: Record<RefusalReason, number>; handshaking: number };
  close(): Promise<void>;
}

/**
 * The prefix a source address is limited by: IPv4 (also IPv4-mapped IPv6) /24, IPv6 /64.
 * Anything unparsable is one bucket of its own ("?"), so it cannot escape the limits.
 */
export function admissionPrefix(address: string | undefined): string {
  if (address === undefined) return "?";
  const mapped = address.toLowerCase().startsWith("::ffff:") ? address.slice(7) : address;
  const v4 = parseIPv4(mapped);
  if (v4) return `${v4[0]}.${v4[1]}.${v4[2]}.0/24`;
  const v6 = parseIPv6(address);
  if (v6) return `${Buffer.from(v6.subarray(0, 8)).toString("hex")}/64`;
  return "?";
}

/** Token buckets per key, bounded: the least recently seen keys are forgotten first. */
class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly rate: number;
  constructor(rate: number) {
    this.rate = rate;
  }
  take(key: string, now = Date.now()): boolean {
    const b = this.buckets.get(key) ?? { tokens: this.rate * 2, at: now };
    b.tokens = Math.min(this.rate * 2, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    this.buckets.delete(key);
    this.buckets.set(key, b);
    if (this.buckets.size > 10_000) this.buckets.delete(this.buckets.keys().next().value as string);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

export function listenForLinks(options: LinkListenerOptions): Promise<LinkListener> {
  const log = options.logger ?? silentLogger;
  const limits: AdmissionLimits = {
    ...DEFAULT_ADMISSION,
    ...(options.handshakesPerSecond === undefined ? {} : { handshakesPerSecond: options.handshakesPerSecond }),
    ...options.admission,
  };
  const limiter = new RateLimiter(limits.handshakesPerSecond);
  const sockets = new Set<Socket>();
  const handshaking = new Map<string, number>(); // prefix → connections in handshake
  let handshakingTotal = 0;
  let accepted = 0;
  const refused: Record<RefusalReason, number> = { rate: 0, prefixHandshakes: 0, handshakes: 0, connections: 0 };
  // Refusals are logged as counts, at most once per interval: a flood must not become a flood of
  // log lines (it once wrote 82 MB in 35 s).
  let unlogged: Record<RefusalReason, number> = { rate: 0, prefixHandshakes: 0, handshakes: 0, connections: 0 };
  let lastLog = -Infinity;
  const refuse = (socket: Socket, reason: RefusalReason) => {
    refused[reason]++;
    unlogged[reason]++;
    socket.destroy();
    const now = Date.now();
    if (now - lastLog < limits.refusalLogIntervalMs) return;
    lastLog = now;
    log.warn("links refused by admission limits", { ...unlogged, sinceMs: limits.refusalLogIntervalMs });
    unlogged = { rate: 0, prefixHandshakes: 0, handshakes: 0, connections: 0 };
  };

  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    const prefix = admissionPrefix(socket.remoteAddress);
    // Cheapest checks first: counters, then the bucket (which a refused connection must not drain).
    if (sockets.size > limits.maxConnections) return refuse(socket, "connections");
    if (handshakingTotal >= limits.handshakingTotal) return refuse(socket, "handshakes");
    const inPrefix = handshaking.get(prefix) ?? 0;
    if (inPrefix >= limits.handshakingPerPrefix) return refuse(socket, "prefixHandshakes");
    if (!limiter.take(prefix)) return refuse(socket, "rate");
    handshaking.set(prefix, inPrefix + 1);
    handshakingTotal++;
    let counted = true;
    const done = () => {
      if (!counted) return;
      counted = false;
      handshakingTotal--;
      const n = (handshaking.get(prefix) ?? 1) - 1;
      if (n <= 0) handshaking.delete(prefix);
      else handshaking.set(prefix, n);
    };
    socket.once("close", done);
    Link.accept(socket, options.keys, { ...options, handshakeTimeoutMs: limits.handshakeTimeoutMs }).then(
      (link) => {
        done();
        accepted++;
        options.onLink(link);
      },
      (error: Error) => {
        done();
        log.debug("link handshake failed", { error: error.message });
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      // After listening, accept errors (EMFILE) are logged, never thrown.
      server.on("error", (error) => log.error("link listener error", { error: error.message }));
      const addr = server.address() as AddressInfo;
      resolve({
        address: { host: addr.address, port: addr.port },
        stats: () => ({ accepted, refused: { ...refused }, handshaking: handshakingTotal }),
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

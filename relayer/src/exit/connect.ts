/**
 * Connects the exit to a target under its policy.
 *
 * The name is resolved exactly once; each resolved address is checked by the policy and the
 * socket is then opened to that checked IP literal, so net.connect never resolves again. That is
 * what defeats DNS rebinding (a name that answers with a public address for the check and with
 * 127.0.0.1 for the connection).
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { isIP, connect, type Socket } from "node:net";
import type { Logger } from "../log.ts";
import { StreamOpenError, StreamReason } from "../wire/reasons.ts";
import type { AddressType } from "./address.ts";
import type { ExitPolicy } from "./policy.ts";

/** Resolves a name to addresses, in the order they should be tried. */
export type Lookup = (host: string) => Promise<Array<{ address: string; family: 4 | 6 }>>;

export interface ConnectTargetOptions {
  /** Deadline for resolution and connection together; default 10 s, then `ttlExpired`. */
  timeoutMs?: number;
  /** Name resolution; default: the system resolver (getaddrinfo) with all addresses. */
  lookup?: Lookup;
  /** Aborting stops the attempt; the rejection is `signal.reason` when it is a StreamOpenError. */
  signal?: AbortSignal;
  logger?: Logger;
}

const DEFAULT_TIMEOUT_MS = 10_000;

const systemLookup: Lookup = async (host) => {
  const found = await dnsLookup(host, { all: true, order: "verbatim" });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/**
 * Opens a TCP connection to `target` if the policy allows one of its addresses, trying allowed
 * addresses in resolution order. Resolves with a connected socket (TCP_NODELAY set, half-open
 * allowed, so either side may end its writes first); the caller must attach an 'error' handler.
 * Rejects with StreamOpenError: notAllowed, hostUnreachable, networkUnreachable,
 * connectionRefused, ttlExpired or generalFailure.
 */
export async function connectTarget(
  target: { host: string; port: number; type?: AddressType },
  policy: ExitPolicy,
  options: ConnectTargetOptions = {},
): Promise<Socket> {
  const { port } = target;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new StreamOpenError(StreamReason.notAllowed, "port outside 1..65535");
  }
  const controller = new AbortController();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timer = setTimeout(
    () => controller.abort(new StreamOpenError(StreamReason.ttlExpired, `no connection within ${timeoutMs} ms`)),
    timeoutMs,
  );
  const outer = options.signal;
  const forward = () => controller.abort(outer?.reason);
  if (outer?.aborted) forward();
  else outer?.addEventListener("abort", forward, { once: true });
  try {
    const addresses = await resolve(target.host, options.lookup ?? systemLookup, controller.signal);
    let refusal = "";
    const allowed = addresses.filter(({ address }) => {
      const verdict = policy.check(address, port);
      if (!verdict.ok && refusal === "") refusal = verdict.why;
      return verdict.ok;
    });
    if (allowed.length === 0) {
      options.logger?.debug("exit refused target", { host: target.host, port, why: refusal });
      throw new StreamOpenError(StreamReason.notAllowed, `refused by the exit policy: ${refusal}`);
    }
    let last: StreamOpenError | undefined;
    for (const { address, family } of allowed) {
      try {
        return await connectOnce(address, family, port, controller.signal);
      } catch (error) {
        if (controller.signal.aborted) throw abortError(controller.signal);
        last = mapConnectError(error);
        options.logger?.debug("exit connect attempt failed", { address, port, reason: last.reason });
      }
    }
    throw last ?? new StreamOpenError(StreamReason.generalFailure, "no address to connect to");
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener("abort", forward);
  }
}

async function resolve(
  host: string,
  lookup: Lookup,
  signal: AbortSignal,
): Promise<Array<{ address: string; family: 4 | 6 }>> {
  const literal = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const family = isIP(literal);
  if (family !== 0) return [{ address: literal, family: family === 6 ? 6 : 4 }];
  let found: Array<{ address: string; family: 4 | 6 }>;
  try {
    // getaddrinfo cannot be cancelled; on abort we stop waiting and let it finish in the background.
    found = await raceAbort(lookup(host), signal);
  } catch (error) {
    if (signal.aborted) throw abortError(signal);
    throw new StreamOpenError(StreamReason.hostUnreachable, "name does not resolve", { cause: error });
  }
  const seen = new Set<string>();
  const unique = found.filter(({ address }) => !seen.has(address) && seen.add(address));
  if (unique.length === 0) throw new StreamOpenError(StreamReason.hostUnreachable, "name has no addresses");
  return unique;
}

function connectOnce(address: string, family: 4 | 6, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolvePromise, reject) => {
    if (signal.aborted) {
      reject(abortError(signal));
      return;
    }
    // An IP literal as host: net.connect does no lookup, so this is the address the policy saw.
    const socket = connect({ host: address, port, family, allowHalfOpen: true, noDelay: true });
    const cleanup = () => {
      socket.off("connect", onConnect);
      socket.off("error", onError);
      signal.removeEventListener("abort", onAbort);
    };
    const onConnect = () => {
      cleanup();
      socket.setNoDelay(true);
      resolvePromise(socket);
    };
    const onError = (error: Error) => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onAbort = () => {
      cleanup();
      socket.destroy();
      reject(abortError(signal));
    };
    socket.on("connect", onConnect);
    socket.on("error", onError);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const onAbort = () => reject(abortError(signal));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolvePromise(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function abortError(signal: AbortSignal): StreamOpenError {
  const reason: unknown = signal.reason;
  if (reason instanceof StreamOpenError) return reason;
  return new StreamOpenError(StreamReason.generalFailure, "connection attempt aborted", { cause: reason });
}

const ERRNO_REASONS: Record<string, StreamReason> = {
  ECONNREFUSED: StreamReason.connectionRefused,
  ENETUNREACH: StreamReason.networkUnreachable,
  ENETDOWN: StreamReason.networkUnreachable,
  EADDRNOTAVAIL: StreamReason.networkUnreachable, // e.g. IPv6 target on a host with no IPv6
  EAFNOSUPPORT: StreamReason.networkUnreachable,
  EHOSTUNREACH: StreamReason.hostUnreachable,
  EHOSTDOWN: StreamReason.hostUnreachable,
  ETIMEDOUT: StreamReason.ttlExpired,
  EACCES: StreamReason.notAllowed, // a local firewall rule refused the connection
  EPERM: StreamReason.notAllowed,
};

function mapConnectError(error: unknown): StreamOpenError {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
  const reason = ERRNO_REASONS[code] ?? StreamReason.generalFailure;
  return new StreamOpenError(reason, `connect failed${code ? `: ${code}` : ""}`, { cause: error });
}

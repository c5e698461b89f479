/**
 * Which relays this relay may EXTEND circuits to: the ones its sources name (a descriptor folder,
 * a descriptor store fed by bootstrap nodes and checked against the registry). An EXTEND names a
 * host, a port and static keys; it is carried out only if a known relay has exactly that endpoint
 * and those keys, so a client cannot use a relay to probe arbitrary addresses for open ports
 * (docs/protocol.md, "Known limits"), nor point a known relay's keys at another address.
 *
 * Lookups are synchronous (the EXTEND path): the set is re-read from the source at most once per
 * `refreshMs`, and on a miss at once if the last read is older than that, so a relay that just
 * published its descriptor is reachable within a second while a flood of unknown EXTENDs costs at
 * most one read a second. A source that fails (a descriptor file half written) keeps the last set.
 */
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";

export interface KnownRelay {
  host: string;
  port: number;
  keys: { keysHash: Uint8Array };
}

export type KnownRelayCheck = (host: string, port: number, keysHash: Uint8Array) => boolean;

const keyOf = (host: string, port: number, keysHash: Uint8Array) =>
  `${host.replace(/^\[|\]$/g, "").toLowerCase()}|${port}|${Buffer.from(keysHash).toString("hex")}`;

/** A check backed by `sources` (their relays together), re-read at most every `refreshMs` (1 s). */
export function knownRelayCheck(
  sources: readonly (() => readonly KnownRelay[])[],
  options: {
    refreshMs?: number;
    now?: () => number;
    logger?: Logger;
    /** An EXTEND named a relay not known: a chance to ask the sources sooner (bootstrap nodes). */
    onMiss?: () => void;
  } = {},
): KnownRelayCheck {
  const refreshMs = options.refreshMs ?? 1_000;
  const now = options.now ?? Date.now;
  const log = options.logger ?? silentLogger;
  let known = new Set<string>();
  let readAt = -Infinity;
  const refresh = () => {
    readAt = now();
    const next = new Set<string>();
    for (const source of sources) {
      try {
        for (const r of source()) next.add(keyOf(r.host, r.port, r.keys.keysHash));
      } catch (error) {
        log.warn("known relays: a source could not be read; keeping what it gave before", {
          error: (error as Error).message,
        });
        for (const k of known) next.add(k); // do not forget relays because one read failed
      }
    }
    known = next;
  };
  return (host, port, keysHash) => {
    const key = keyOf(host, port, keysHash);
    if (now() - readAt >= refreshMs) refresh();
    if (known.has(key)) return true;
    options.onMiss?.();
    return false;
  };
}

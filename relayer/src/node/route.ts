/**
 * Route choice for the entry's circuits: planPath (mesh/plan.ts) over the directory, each relay
 * weighted by what the mesh knows of it (health and RTT from Knowledge, its current verdict), with
 * the diversity rules, and the fallbacks an active circuit may take when no path fits.
 */
import { randomInt } from "node:crypto";
import { isIP } from "node:net";
import type { HopState } from "../mesh/analyze.ts";
import { type Candidate, type DiversityRules, PlanError, planPath } from "../mesh/plan.ts";
import { StreamOpenError, StreamReason } from "../wire/reasons.ts";
import type { DirectoryEntry } from "./directory.ts";

/** A relay's identity in the mesh (Knowledge, suspects, verdicts): its keys hash, hex. */
export function nodeId(entry: { keys: { keysHash: Uint8Array } }): string {
  return Buffer.from(entry.keys.keysHash).toString("hex");
}

/** Whether `host` is a loopback address or name (a network on one host). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

/** What the mesh knows of a node, for route choice. */
export interface NodeInfo {
  health: number;
  rttMs: number | undefined;
  state?: HopState;
}

/** Relays below this health (Knowledge: a failure in the last few minutes, heavy loss) are a last resort. */
export const MIN_HEALTH = 0.25;

/** Uniform in [0, 1) from the CSPRNG: which relays carry a user's traffic must not be predictable. */
const random = () => randomInt(2 ** 47) / 2 ** 47;

export interface RouteOptions {
  hops: number;
  role: "active" | "standby";
  /** Relays this circuit must not use (the active circuit's, when planning its standby). */
  avoid: ReadonlySet<string>;
  suspects: ReadonlySet<string>;
  /** `prefix` undefined: on, unless every relay of the directory is on loopback. */
  diversity?: Partial<DiversityRules>;
  nodeInfo?: (id: string) => NodeInfo;
  /** Told when the prefix rule is turned off because every relay is on loopback. */
  onPrefixOff?: () => void;
}

/**
 * Chooses a path. Relays suspected now or known to be unhealthy (health under `MIN_HEALTH`) are
 * left out; an active circuit that cannot be built without them takes them back in, suspects
 * last, and relays judged frozen or dead now after them (a suspicion is a guess, and a path
 * through a doubtful relay beats no path), but a standby
 * never does: a doubtful standby is worse than none. The diversity rules are never relaxed.
 * Throws StreamOpenError (network unreachable) naming why no path fits.
 */
export function chooseRoute(relays: readonly DirectoryEntry[], o: RouteOptions): DirectoryEntry[] {
  const rules = { ...o.diversity };
  if (rules.prefix === undefined && relays.length > 0 && relays.every((r) => isLoopback(r.host))) {
    rules.prefix = false;
    o.onPrefixOff?.();
  }
  const candidates: Candidate[] = relays.map((entry) => {
    const info = o.nodeInfo?.(nodeId(entry)) ?? { health: 0.5, rttMs: undefined };
    return { entry, health: info.health, rttMs: info.rttMs, ...(info.state ? { state: info.state } : {}) };
  });
  const options = { hops: o.hops, random, diversity: rules, idOf: nodeId };
  const unhealthy = candidates.filter((c) => c.health < MIN_HEALTH).map((c) => nodeId(c.entry));
  const tries = [new Set([...o.avoid, ...o.suspects, ...unhealthy])];
  if (o.role === "active") tries.push(new Set([...o.avoid, ...o.suspects]), new Set(o.avoid));
  let last: PlanError | undefined;
  for (const without of tries) {
    try {
      return planPath(candidates, { ...options, avoid: without });
    } catch (error) {
      if (!(error instanceof PlanError)) throw error;
      last = error;
    }
  }
  // Last resort for an active circuit: relays judged frozen or dead right now too (a relay that
  // stalled for 200 ms on a busy machine, in a directory too small to go around it). A build
  // through a dead one fails at once; one that only stalled carries the stream.
  if (o.role === "active" && candidates.some((c) => c.state === "frozen" || c.state === "dead")) {
    const judged = candidates.map(({ state: _state, ...c }) => c);
    try {
      return planPath(judged, { ...options, avoid: new Set(o.avoid) });
    } catch (error) {
      if (!(error instanceof PlanError)) throw error;
    }
  }
  throw new StreamOpenError(StreamReason.networkUnreachable, (last as PlanError).message);
}

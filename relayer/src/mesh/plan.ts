/**
 * The P of MAPE-K: which relays a new circuit goes through, and which standby circuits to keep.
 * Pure functions: the randomness and the clock are parameters.
 *
 * Paths: the exit first (among exits), then the other hops back towards the client, from relays
 * that are not exits when those suffice. No two hops share a region, a network prefix (IPv4 /16,
 * IPv6 /32, an IPv6 address carrying an IPv4 one as that IPv4 /16; a host name counts as its own
 * prefix) or an operator, so one country, one hosting network or one operator never holds two hops. Among the
 * candidates that fit, those whose score is within `goodShare` of the best are "good", and one is
 * drawn at random weighted by score, so load spreads instead of piling on the single fastest relay.
 * A node whose state is dead or frozen, or that the caller avoids, is never chosen.
 */
import type { DirectoryEntry } from "../node/directory.ts";
import { embeddedIPv4, parseIPv4, parseIPv6 } from "../wire/ip.ts";

export interface Candidate {
  entry: DirectoryEntry;
  /** 0..1 from Knowledge (healthScore). */
  health: number;
  /** Smoothed RTT, ms (undefined: never measured). */
  rttMs: number | undefined;
  /** Analyze's latest verdict for the node (only "ok" nodes are preferred). */
  state?: "ok" | "dead" | "frozen" | "loss" | "spike";
}

export interface DiversityRules {
  region: boolean;
  prefix: boolean;
  operator: boolean;
}

export interface PlanOptions {
  hops: number;
  /** Uniform in [0, 1). */
  random: () => number;
  /** Nodes never to use (suspects, the active circuit when planning its standby), by `idOf`. */
  avoid?: ReadonlySet<string>;
  /** A node's identity for `avoid` (default its name; the entry uses its keys hash). */
  idOf?: (entry: DirectoryEntry) => string;
  diversity?: Partial<DiversityRules>;
  /** Candidates scoring at least this share of the best are drawn from (default 0.5). */
  goodShare?: number;
  /** RTT assumed for a node never measured (default 100 ms). */
  unknownRttMs?: number;
  /** Random restarts when a greedy draw paints itself into a corner (default 16). */
  attempts?: number;
}

export class PlanError extends Error {
  override name = "PlanError";
}

/**
 * The network a relay's host is in: "a.b" of an IPv4 address, the first 32 bits of an IPv6 one.
 * An IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:0:0/96` in any spelling, dotted
 * or hex; NAT64 `64:ff9b::/96`; 6to4 `2002::/16`) is that IPv4 address's /16: `[::ffff:a01:909]`
 * is 10.1.9.9. A host name is its own prefix (only unsigned folder entries can carry one: signed
 * descriptors must name an IP address).
 */
export function networkPrefix(host: string): string {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  let bytes = parseIPv4(h) ?? parseIPv6(h);
  if (bytes?.length === 16) {
    const v4 = embeddedIPv4(bytes);
    if (v4) bytes = parseIPv4(v4);
  }
  if (!bytes) return `name:${h}`;
  if (bytes.length === 4) return `v4:${bytes[0]}.${bytes[1]}`;
  return `v6:${Buffer.from(bytes.subarray(0, 4)).toString("hex")}`;
}

/** Why `a` and `b` cannot be on one path (undefined: they can). */
export function conflict(a: DirectoryEntry, b: DirectoryEntry, rules: DiversityRules): string | undefined {
  if (a.name === b.name || Buffer.from(a.keys.keysHash).equals(Buffer.from(b.keys.keysHash))) return "same node";
  if (rules.region && a.region !== undefined && a.region === b.region) return "region";
  if (rules.prefix && networkPrefix(a.host) === networkPrefix(b.host)) return "prefix";
  if (rules.operator && a.operator !== undefined && a.operator === b.operator) return "operator";
  return undefined;
}

/** Route weight: health over latency (a 50 ms relay weighs twice a 150 ms one of equal health). */
export function score(c: Candidate, unknownRttMs = 100): number {
  const rtt = c.rttMs ?? unknownRttMs;
  const penalty = c.state === "loss" || c.state === "spike" ? 0.25 : 1;
  return (c.health * penalty) / (1 + rtt / 50);
}

function draw(pool: readonly Candidate[], options: PlanOptions): Candidate | undefined {
  if (pool.length === 0) return undefined;
  const unknown = options.unknownRttMs ?? 100;
  const scored = pool.map((c) => ({ c, s: score(c, unknown) }));
  const best = Math.max(...scored.map((x) => x.s));
  const good = best > 0 ? scored.filter((x) => x.s >= best * (options.goodShare ?? 0.5)) : scored;
  const total = good.reduce((sum, x) => sum + Math.max(x.s, 1e-9), 0);
  let r = options.random() * total;
  for (const x of good) {
    r -= Math.max(x.s, 1e-9);
    if (r < 0) return x.c;
  }
  return good.at(-1)?.c;
}

/**
 * Chooses a path of `options.hops` relays, the last an exit, honouring the diversity rules. The
 * hops before the last are drawn from relays that are not exits whenever those can make a diverse
 * path (exits are the scarce relays, and an exit as guard sees both the client and, through its
 * own exit traffic, what it connects to); only when they cannot are exits allowed there too.
 */
export function planPath(candidates: readonly Candidate[], options: PlanOptions): DirectoryEntry[] {
  const rules: DiversityRules = { region: true, prefix: true, operator: true, ...options.diversity };
  const avoid = options.avoid ?? new Set<string>();
  const idOf = options.idOf ?? ((e: DirectoryEntry) => e.name);
  const usable = candidates.filter((c) => !avoid.has(idOf(c.entry)) && c.state !== "dead" && c.state !== "frozen");
  const exits = usable.filter((c) => c.entry.exit);
  if (exits.length === 0) throw new PlanError("no usable exit relay");
  const attempts = options.attempts ?? 16;
  const inner = usable.filter((c) => !c.entry.exit);
  for (const before of inner.length === 0 ? [usable] : [inner, usable]) {
    for (let attempt = 0; attempt < attempts; attempt++) {
      const exit = draw(exits, options);
      if (!exit) break;
      const path = [exit];
      while (path.length < options.hops) {
        const next = draw(
          before.filter((c) => path.every((p) => conflict(c.entry, p.entry, rules) === undefined)),
          options,
        );
        if (!next) break;
        path.unshift(next);
      }
      if (path.length === options.hops) return path.map((c) => c.entry);
    }
  }
  throw new PlanError(
    `no ${options.hops}-hop path among ${usable.length} usable relays keeps hops in distinct ` +
      `${Object.entries(rules)
        .filter(([, on]) => on)
        .map(([k]) => k)
        .join("/")}`,
  );
}

// ---------------------------------------------------------------- standby circuits

export interface ClassState {
  /** The isolation key. */
  isolation: string;
  /** When a stream of this class last opened (ms). */
  lastUsed: number;
  /** Node names of its active circuit (undefined: none built). */
  active?: readonly string[];
  /** Node names of its standby circuit, and whether the standby is built. */
  standby?: { path: readonly string[]; ready: boolean };
}

export type StandbyAction =
  | { kind: "build-standby"; isolation: string; avoid: ReadonlySet<string> }
  | { kind: "drop-standby"; isolation: string; why: string };

/**
 * One pre-built standby per active isolation class (a class is active while it opened a stream
 * within `activeMs`), sharing no relay with the class's active circuit, so that one failure never
 * takes both. A standby that overlaps the active circuit (after a promotion) or avoids nothing
 * useful is replaced; classes gone idle lose theirs.
 */
export function planStandbys(
  classes: readonly ClassState[],
  now: number,
  options: { activeMs?: number; suspects?: ReadonlySet<string> } = {},
): StandbyAction[] {
  const activeMs = options.activeMs ?? 10 * 60_000;
  const suspects = options.suspects ?? new Set<string>();
  const actions: StandbyAction[] = [];
  for (const c of classes) {
    const active = now - c.lastUsed < activeMs;
    if (!active) {
      if (c.standby) actions.push({ kind: "drop-standby", isolation: c.isolation, why: "class idle" });
      continue;
    }
    const avoid = new Set([...(c.active ?? []), ...suspects]);
    if (c.standby) {
      const overlap = c.standby.path.find((n) => avoid.has(n));
      if (overlap === undefined) continue;
      actions.push({ kind: "drop-standby", isolation: c.isolation, why: `shares or uses ${overlap}` });
    }
    actions.push({ kind: "build-standby", isolation: c.isolation, avoid });
  }
  return actions;
}

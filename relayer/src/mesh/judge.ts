/**
 * Analyze across circuits: every hop of every circuit judged with analyzeHop, and the verdicts
 * combined per relay. Pure: observations, baselines and the clock are parameters, so each rule is
 * tested without sockets (test/relayer/mesh-analyze.test.ts).
 *
 * - Path order: on a circuit, the first hop not ok is the one judged; the hops behind it cannot
 *   be judged from that circuit (their beacons cross it), and when it is silent they should not
 *   be beaconed (`silentFrom`).
 * - The expected round trip to hop k is the sum of each hop's own share of it (Knowledge keeps a
 *   node's share); the jitters combine as independent deviations do (the root of the sum of their
 *   squares), not by adding up: three hops of 20 ms jitter vary by ~35 ms together, not 60.
 * - Relays are judged against each other: a spike counts only when the hop's RTT over its baseline
 *   exceeds `spikeFactor` times that of the median hop measured now, and loss only when it exceeds
 *   the median hop's by `lossThreshold` (a busy machine or the entry's own uplink slows them all).
 * - Many relays silent at once (at least 3, and half of those judged) is the entry's own stall or
 *   its network: `silentStall` says so, and the caller blames nobody new.
 * - A hop found silent behind another (hop k > 0, the hops before it answering) may be alive and
 *   the relay before it dropping what it should pass on: `silentBehind` names the relay before it,
 *   so that the caller can check the silent one directly before it blames it (node/entry-mesh.ts).
 */
import { type AnalyzeOptions, analyzeHop, type HopObservation, type HopState, type HopVerdict } from "./analyze.ts";

export const RANK: Record<HopState, number> = { ok: 0, spike: 1, loss: 2, frozen: 3, dead: 4 };

export interface JudgedCircuit {
  /** Node ids, client side first. */
  nodes: readonly string[];
  /** Observations of each hop's link (an empty list for a hop not beaconed). */
  observations: (hop: number) => readonly HopObservation[];
  /** Hops from here on are not beaconed (a hop before them is silent). */
  pausedFrom: number;
}

export interface NodeBaseline {
  rttMs: number | undefined;
  jitterMs: number;
  loss: number;
}

export interface Judgement {
  /** The worst verdict per relay that was judged and is not ok. */
  verdicts: Map<string, HopVerdict>;
  /** Every relay judged (at least one of its hops was looked at). */
  seen: Set<string>;
  /** Per circuit (same order): the first hop not to beacon (its length: all of them). */
  silentFrom: number[];
  /** Many relays silent at once: the entry or its network, not them. */
  silentStall: boolean;
  /**
   * Relays found silent only behind another hop (never as a first hop): per relay, the relay just
   * before it on each circuit where it was silent, and that circuit's index.
   */
  silentBehind: Map<string, { pred: string; circuit: number }[]>;
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

export function judgeCircuits(
  circuits: readonly JudgedCircuit[],
  baseline: (node: string) => NodeBaseline,
  now: number,
  options: AnalyzeOptions,
): Judgement {
  const seen = new Set<string>();
  const ratios: number[] = [];
  const losses: number[] = [];
  const judged = circuits.map((c) => {
    let rtt: number | undefined = 0;
    let jitter2 = 0;
    const hops: { node: string; v: HopVerdict; ratio: number | undefined }[] = [];
    for (let hop = 0; hop < c.nodes.length && hop < c.pausedFrom; hop++) {
      const node = c.nodes[hop] as string;
      const b = baseline(node);
      rtt = rtt === undefined || b.rttMs === undefined ? undefined : rtt + b.rttMs;
      jitter2 += b.jitterMs * b.jitterMs;
      seen.add(node);
      const v = analyzeHop(
        c.observations(hop),
        { rttMs: rtt, jitterMs: Math.sqrt(jitter2), loss: b.loss },
        now,
        options,
      );
      const ratio = v.rttMs !== undefined && rtt ? v.rttMs / rtt : undefined;
      if (ratio !== undefined) ratios.push(ratio);
      if (v.loss !== undefined) losses.push(v.loss);
      hops.push({ node, v, ratio });
      if (RANK[v.state] >= RANK.frozen) break;
    }
    return hops;
  });
  // How slow and lossy the relays are right now, taken together (the median hop).
  const netRatio = Math.max(1, median(ratios) ?? 1);
  const netLoss = median(losses) ?? 0;
  const verdicts = new Map<string, HopVerdict>();
  const silentFirst = new Set<string>();
  const silentBehind = new Map<string, { pred: string; circuit: number }[]>();
  const silentFrom = judged.map((hops, i) => {
    for (const [hop, { node, v, ratio }] of hops.entries()) {
      const outlier =
        v.state === "spike"
          ? ratio !== undefined && ratio > options.spikeFactor * netRatio
          : v.state === "loss"
            ? (v.loss ?? 1) > netLoss + options.lossThreshold
            : true;
      if (v.state === "ok" || !outlier) continue;
      const held = verdicts.get(node);
      if (!held || RANK[v.state] > RANK[held.state]) verdicts.set(node, v);
      if (RANK[v.state] < RANK.frozen) return (circuits[i] as JudgedCircuit).nodes.length;
      if (hop === 0) silentFirst.add(node);
      else {
        const pred = (circuits[i] as JudgedCircuit).nodes[hop - 1] as string;
        silentBehind.set(node, [...(silentBehind.get(node) ?? []), { pred, circuit: i }]);
      }
      return hop + 1;
    }
    return (circuits[i] as JudgedCircuit).nodes.length;
  });
  const silent = [...verdicts.values()].filter((v) => RANK[v.state] >= RANK.frozen).length;
  for (const node of silentFirst) silentBehind.delete(node);
  return { verdicts, seen, silentFrom, silentStall: silent >= 3 && silent * 2 >= seen.size, silentBehind };
}

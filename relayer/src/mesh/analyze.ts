/**
 * The A of MAPE-K: from what a link has seen (beacons sent, echoes back, the socket closing, a cell
 * that failed its checks), what state is the hop in? Pure functions over observations with an
 * explicit clock, so every rule is tested by replaying sequences.
 *
 * - dead: the socket closed or a cell failed, or `deadMissed` beacons in a row went unanswered (or
 *   the first of them waited `deadAfterMs`);
 * - frozen: the link is open but a beacon has waited longer than the frozen threshold, which adapts
 *   to the hop (`frozenRttFactor` × (RTT + 4 × jitter), TCP's RTO shape) within [min, max];
 * - loss: of the last `lossWindow` beacons, a share above the node's own baseline loss + `lossThreshold`
 *   came back late (beyond the threshold) or not at all. Beacons ride TCP, so loss shows as late
 *   echoes (retransmissions), not missing ones;
 * - spike: the median of the last `spikeSamples` round trips exceeds the baseline by `spikeFactor`
 *   and by at least `spikeMinMs` and four times the node's jitter (a hop whose round trips always
 *   vary a lot is not spiking when they do).
 */

export type HopObservation =
  | { kind: "beacon"; seq: number; at: number }
  | { kind: "echo"; seq: number; at: number }
  /** Traffic from the hop (or beyond it) arrived: it was alive then. */
  | { kind: "heard"; at: number }
  | { kind: "closed"; at: number }
  | { kind: "cell-error"; at: number };

/** The node's normal behaviour, from Knowledge (taken before the episode being judged). */
export interface Baseline {
  rttMs: number | undefined;
  jitterMs: number;
  loss: number;
}

export interface AnalyzeOptions {
  deadMissed: number;
  /** Dead also once the first unanswered beacon has waited this long, however few were sent (a slow pace). */
  deadAfterMs?: number;
  frozenMinMs: number;
  frozenMaxMs: number;
  frozenRttFactor: number;
  spikeFactor: number;
  spikeMinMs: number;
  spikeSamples: number;
  lossWindow: number;
  lossThreshold: number;
}

export const DEFAULT_ANALYZE: AnalyzeOptions = {
  deadMissed: 6,
  frozenMinMs: 250,
  frozenMaxMs: 1_000,
  frozenRttFactor: 4,
  spikeFactor: 2,
  spikeMinMs: 50,
  spikeSamples: 3,
  lossWindow: 20,
  lossThreshold: 0.2,
};

export type HopState = "ok" | "dead" | "frozen" | "loss" | "spike";

export interface HopVerdict {
  state: HopState;
  /** One line for the log. */
  reason: string;
  /** When the condition began (ms): the close, or the send time of the first unanswered beacon. */
  since?: number;
  /** The recent round trip: the median of the last `spikeSamples` echoes. */
  rttMs?: number;
  /** The share of the last `lossWindow` judged beacons that came back late or not at all. */
  loss?: number;
}

/** Beacon wait beyond which a hop counts as frozen (and an echo as late). */
export function frozenThresholdMs(baseline: Baseline, options: AnalyzeOptions = DEFAULT_ANALYZE): number {
  const rtt = baseline.rttMs ?? options.frozenMinMs / options.frozenRttFactor;
  const raw = options.frozenRttFactor * (rtt + 4 * baseline.jitterMs);
  return Math.min(options.frozenMaxMs, Math.max(options.frozenMinMs, raw));
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Judges one hop at time `now` from its observations (oldest first; bounded by the caller). */
export function analyzeHop(
  observations: readonly HopObservation[],
  baseline: Baseline,
  now: number,
  options: AnalyzeOptions = DEFAULT_ANALYZE,
): HopVerdict {
  const sent = new Map<number, number>();
  const rtts = new Map<number, number>();
  let heard = -Infinity;
  for (const o of observations) {
    if (o.kind === "closed" || o.kind === "cell-error")
      return { state: "dead", reason: o.kind === "closed" ? "link closed" : "cell failed its checks", since: o.at };
    if (o.kind === "heard") heard = Math.max(heard, o.at);
    else if (o.kind === "beacon") sent.set(o.seq, o.at);
    else {
      const at = sent.get(o.seq);
      if (at !== undefined && !rtts.has(o.seq)) rtts.set(o.seq, o.at - at);
    }
  }
  const threshold = frozenThresholdMs(baseline, options);
  const beacons = [...sent].sort((a, b) => a[0] - b[0]);

  // Unanswered beacons at the tail, oldest first: the hop has said nothing since the first of them.
  // Traffic heard after a beacon left answers for it (the echo may wait behind that traffic).
  const tail: [number, number][] = [];
  for (let i = beacons.length - 1; i >= 0; i--) {
    const b = beacons[i] as [number, number];
    if (rtts.has(b[0]) || b[1] < heard) break;
    tail.unshift(b);
  }
  const overdue = tail.filter(([, at]) => now - at > threshold);
  const waited = overdue.length > 0 ? now - (overdue[0] as [number, number])[1] : 0;
  if (overdue.length >= options.deadMissed || (options.deadAfterMs !== undefined && waited >= options.deadAfterMs))
    return {
      state: "dead",
      reason: `${overdue.length} beacons unanswered over ${Math.round(waited)} ms`,
      since: (overdue[0] as [number, number])[1],
    };
  if (overdue.length > 0) {
    const first = (overdue[0] as [number, number])[1];
    return {
      state: "frozen",
      reason: `no echo for ${Math.round(now - first)} ms (threshold ${threshold} ms)`,
      since: first,
    };
  }

  // Loss: among the last `lossWindow` beacons whose fate is known, the share late or missing.
  const judged = beacons
    .filter(([seq, at]) => rtts.has(seq) || (now - at > threshold && at >= heard))
    .slice(-options.lossWindow);
  let loss: number | undefined;
  if (judged.length >= Math.min(options.lossWindow, 10)) {
    const late = judged.filter(([seq]) => (rtts.get(seq) ?? Infinity) > threshold);
    loss = late.length / judged.length;
    if (loss > baseline.loss + options.lossThreshold) {
      const firstLate = late[0] as [number, number];
      return {
        state: "loss",
        reason: `${late.length}/${judged.length} beacons late or lost`,
        since: firstLate[1],
        loss,
      };
    }
  }

  // Spike: recent round trips against the node's own baseline.
  const recent = beacons.filter(([seq]) => rtts.has(seq)).slice(-options.spikeSamples);
  const m = recent.length > 0 ? median(recent.map(([seq]) => rtts.get(seq) as number)) : undefined;
  if (m !== undefined && baseline.rttMs !== undefined && recent.length >= options.spikeSamples) {
    if (
      m > baseline.rttMs * options.spikeFactor &&
      m - baseline.rttMs >= Math.max(options.spikeMinMs, 4 * baseline.jitterMs)
    )
      return {
        state: "spike",
        reason: `RTT ${Math.round(m)} ms against a baseline of ${Math.round(baseline.rttMs)} ms`,
        since: (recent[0] as [number, number])[1],
        rttMs: m,
        ...(loss !== undefined ? { loss } : {}),
      };
  }
  return {
    state: "ok",
    reason: "answering",
    ...(m !== undefined ? { rttMs: m } : {}),
    ...(loss !== undefined ? { loss } : {}),
  };
}

/** Keeps at most `max` observations (the newest), so a link's memory is bounded. */
export function keepRecent<T>(observations: T[], max: number): T[] {
  return observations.length > max ? observations.slice(observations.length - max) : observations;
}

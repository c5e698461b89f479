/**
 * A local tally of Snapshot votes with quadratic weights, the same rule as the space's strategy:
 * a voter's weight is sqrt(delegated X0T votes at the snapshot), in whole-token units
 * (sqrt(1,000,000 X0T) = 1,000). Used to check a proposal's result without the score API.
 */
export interface CastVote {
  voter: string;
  /** 1-based choice index, as Snapshot's single-choice votes carry it. */
  choice: number;
  /** Delegated X0T votes at the snapshot, in wei (18 decimals). */
  votes: bigint;
}

export interface Tally {
  /** Sum of weights per choice (index 0 = choice 1), in sqrt(X0T) units. */
  scores: number[];
  total: number;
  /** 1-based winning choice, or 0 on a tie or with no votes. */
  winner: number;
  /** Voters counted (the last vote of each voter wins, as on Snapshot). */
  voters: number;
}

const WEI_PER_SQRT_UNIT = 10n ** 9n; // sqrt(1e18 wei) = 1e9

/** floor(sqrt(n)) for a bigint. */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError("sqrt of a negative number");
  if (n < 2n) return n;
  let x = n;
  let y = (x + 1n) >> 1n;
  while (y < x) {
    x = y;
    y = (x + n / x) >> 1n;
  }
  return x;
}

export function tallySqrt(votes: readonly CastVote[], choices: number): Tally {
  if (!Number.isInteger(choices) || choices < 1) throw new RangeError("choices must be >= 1");
  const last = new Map<string, CastVote>();
  for (const v of votes) {
    if (!Number.isInteger(v.choice) || v.choice < 1 || v.choice > choices)
      throw new RangeError(`invalid choice ${v.choice} by ${v.voter}`);
    if (v.votes < 0n) throw new RangeError(`negative votes for ${v.voter}`);
    last.set(v.voter.toLowerCase(), v);
  }
  const scores = new Array<number>(choices).fill(0);
  for (const v of last.values()) {
    const w = isqrt(v.votes);
    scores[v.choice - 1]! += Number(w / WEI_PER_SQRT_UNIT) + Number(w % WEI_PER_SQRT_UNIT) / 1e9;
  }
  const total = scores.reduce((a, b) => a + b, 0);
  const best = Math.max(...scores);
  const winners = scores.flatMap((s, i) => (s === best && s > 0 ? [i + 1] : []));
  return { scores, total, winner: winners.length === 1 ? (winners[0] as number) : 0, voters: last.size };
}

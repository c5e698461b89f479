/**
 * The Snapshot space of x0tta6bl4 on Base Sepolia (chain 84532): off-chain votes weighted by
 * sqrt(X0T votes) of registered humans only. On Snapshot that is the `math` strategy with the
 * `square-root` operation over `contract-call` of `VoterRegistry.snapshotVotes(voter)` at the
 * proposal's block: the voter's delegated X0T votes if it is registered in the on-chain Sybil gate
 * (an EAS attestation, docs/governance.md), 0 otherwise. The same registry and the same rule as the
 * on-chain governor; `erc20-votes` alone would let 1 holder split over 100 addresses score 10x.
 * Snapshot's "quadratic" voting *type* is a different formula and is not used.
 * deploy/snapshot/space.json is this object for the Base Sepolia deployment; `npm run
 * snapshot:space` rewrites it from the addresses.
 */
export const BASE_SEPOLIA = "84532";

export interface SpaceAddresses {
  /** The VoterRegistry (its `snapshotVotes` view) on the space's network. */
  voterRegistry: string;
  /** The council Safe, the space's admin. */
  councilSafe: string;
}

/** `VoterRegistry.snapshotVotes(address) → uint256`, as the contract-call strategy takes it. */
export const SNAPSHOT_VOTES_ABI = {
  type: "function",
  name: "snapshotVotes",
  stateMutability: "view",
  inputs: [{ internalType: "address", name: "account", type: "address" }],
  outputs: [{ internalType: "uint256", name: "votes", type: "uint256" }],
} as const;

/** Voting rules of the space; the hub refuses proposals that break them (see snapshot.ts). */
export const SPACE_VOTING = { delay: 3600, period: 5 * 24 * 3600 } as const;

export function buildSpace(addresses: SpaceAddresses, network = BASE_SEPOLIA) {
  const registeredVotes = {
    name: "contract-call",
    network,
    params: { address: addresses.voterRegistry, decimals: 18, symbol: "X0T", methodABI: SNAPSHOT_VOTES_ABI },
  };
  const sqrtVotes = {
    name: "math",
    network,
    params: {
      symbol: "sqrt(X0T)",
      operation: "square-root",
      operands: [{ type: "strategy", strategy: registeredVotes }],
    },
  };
  return {
    name: "x0tta6bl4",
    about:
      "x0tta6bl4 relay network: weight = sqrt(X0T votes) of humans registered on-chain with an EAS attestation. Grants are paid by the council Safe within its cap.",
    network,
    symbol: "X0T",
    strategies: [sqrtVotes],
    // No admins: an admin could switch the strategy back to plain token votes (Sybil-prone) or lower
    // the quorum. Settings change only through the space's controller, the ENS name, which the
    // timelock owns (docs/governance.md).
    admins: [],
    moderators: [],
    members: [],
    filters: { minScore: 100, onlyMembers: false },
    // Proposers need a score of 100 (sqrt of 10,000 X0T of votes, registered).
    validation: { name: "basic", params: { minScore: 100, strategies: [sqrtVotes] } },
    // Quorum 20,000 = sqrt(400,000,000 X0T), the on-chain quorum 2e13 in whole-token units: no single
    // genesis allocation meets it.
    voting: { ...SPACE_VOTING, type: "single-choice", quorum: 20_000, hideAbstain: false },
    plugins: {},
    treasuries: [{ name: "Council Safe", address: addresses.councilSafe, network }],
  };
}

/**
 * The Snapshot space of x0tta6bl4 on Base Sepolia (chain 84532): off-chain votes weighted by
 * sqrt(X0T votes). On Snapshot that is the `math` strategy with the `square-root` operation over
 * `erc20-votes` (delegated ERC-5805 votes of X0T at the proposal's block); Snapshot's "quadratic"
 * voting *type* is a different formula and is not used. deploy/snapshot/space.json is this
 * object for the Base Sepolia deployment; `npm run snapshot:space` rewrites it from the addresses.
 */
export const BASE_SEPOLIA = "84532";

export interface SpaceAddresses {
  /** X0T on the space's network. */
  token: string;
  /** The council Safe, the space's admin. */
  councilSafe: string;
}

export function buildSpace(addresses: SpaceAddresses, network = BASE_SEPOLIA) {
  const votes = { name: "erc20-votes", network, params: { address: addresses.token, symbol: "X0T", decimals: 18 } };
  const sqrtVotes = {
    name: "math",
    network,
    params: { symbol: "sqrt(X0T)", operation: "square-root", operands: [{ type: "strategy", strategy: votes }] },
  };
  return {
    name: "x0tta6bl4",
    about:
      "Off-chain votes of the x0tta6bl4 relay network, weight = sqrt(delegated X0T votes). Treasury grants go out through the council Safe.",
    network,
    symbol: "X0T",
    strategies: [sqrtVotes],
    admins: [addresses.councilSafe],
    moderators: [],
    members: [],
    filters: { minScore: 100, onlyMembers: false },
    // Proposers need a score of 100 (sqrt of 10,000 X0T of votes).
    validation: { name: "basic", params: { minScore: 100, strategies: [sqrtVotes] } },
    voting: { delay: 3600, period: 5 * 24 * 3600, type: "single-choice", quorum: 10_000, hideAbstain: false },
    plugins: {},
    treasuries: [{ name: "Council Safe", address: addresses.councilSafe, network }],
  };
}

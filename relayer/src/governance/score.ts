/**
 * Scores of a Snapshot space computed the way Snapshot's score API does for the strategies this
 * project uses, against any JSON-RPC chain at a given block: `contract-call` (the method in
 * `methodABI` called with the voter's address; the result divided by 10^decimals), `erc20-votes`
 * (getVotes), and `math` with `square-root` over one operand. Used by the tests (the score API is
 * not reachable from CI) and to check a proposal's weights before the council pays out.
 */
import { type Abi, type Address, type PublicClient, erc20Abi, formatUnits } from "viem";

export interface SpaceStrategy {
  name: string;
  network?: string;
  params: Record<string, unknown>;
}

export class ScoreError extends Error {
  override name = "ScoreError";
}

const VOTES_ABI = [
  ...erc20Abi,
  {
    type: "function",
    name: "getVotes",
    stateMutability: "view",
    inputs: [{ name: "account", type: "address" }],
    outputs: [{ type: "uint256" }],
  },
] as const;

async function scoreOne(
  client: PublicClient,
  strategy: SpaceStrategy,
  voter: Address,
  blockNumber: bigint,
): Promise<number> {
  const p = strategy.params;
  switch (strategy.name) {
    case "contract-call": {
      const method = p.methodABI as { name: string };
      const value = (await client.readContract({
        address: p.address as Address,
        abi: [p.methodABI] as Abi,
        functionName: method.name,
        args: [voter],
        blockNumber,
      })) as bigint;
      return parseFloat(formatUnits(value, Number(p.decimals)));
    }
    case "erc20-votes": {
      const value = await client.readContract({
        address: p.address as Address,
        abi: VOTES_ABI,
        functionName: "getVotes",
        args: [voter],
        blockNumber,
      });
      return parseFloat(formatUnits(value, Number(p.decimals)));
    }
    case "math": {
      const operands = p.operands as Array<{ type: string; strategy: SpaceStrategy }>;
      if (p.operation !== "square-root" || operands.length !== 1 || operands[0]!.type !== "strategy")
        throw new ScoreError(`math: only "square-root" of one strategy is supported, got ${String(p.operation)}`);
      return Math.sqrt(await scoreOne(client, operands[0]!.strategy, voter, blockNumber));
    }
    default:
      throw new ScoreError(`strategy "${strategy.name}" is not supported`);
  }
}

/** Each voter's score: the sum over the space's strategies, at `blockNumber` (the proposal's snapshot). */
export async function scoreVoters(
  client: PublicClient,
  strategies: readonly SpaceStrategy[],
  voters: readonly Address[],
  blockNumber: bigint,
): Promise<Map<Address, number>> {
  const scores = new Map<Address, number>();
  for (const voter of voters) {
    let total = 0;
    for (const s of strategies) total += await scoreOne(client, s, voter, blockNumber);
    scores.set(voter, total);
  }
  return scores;
}

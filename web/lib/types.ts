import type { Address } from "viem";

export type ContractName =
  | "X0T"
  | "RelayerRegistry"
  | "BandwidthCredit"
  | "EpochRewards"
  | "QuadraticGovernor"
  | "VoterRegistry"
  | "TimelockController"
  | "TreasurySafe"
  | "TreasuryExecutor";

export interface Deployment {
  chainId: number;
  rpcUrl?: string;
  contracts: Partial<Record<ContractName, Address>>;
}

/** ABIs generated from the Hardhat build (relayer/src/chain/abi.ts, `npm run abi`); never pasted. */
export { bandwidthCreditAbi, epochRewardsAbi, relayerRegistryAbi, x0tAbi } from "@x0tta6bl4/relayer/chain/abi";
import { bandwidthCreditAbi, epochRewardsAbi, relayerRegistryAbi, x0tAbi } from "@x0tta6bl4/relayer/chain/abi";

/** Every custom error the protocol can revert with, for decoding reverts that bubble up. */
export const allErrorsAbi = [...x0tAbi, ...relayerRegistryAbi, ...bandwidthCreditAbi, ...epochRewardsAbi].filter(
  (item) => item.type === "error",
);

/**
 * `npm run deploy:base-sepolia`: the whole system on a public chain, in the order the modules need
 * (Treasury: timelock + Safe; then Governance: the token economy with the Safe as treasury, the
 * governor, the voter registry and the hand-over of every admin role to the timelock).
 *
 * Parameters come from deploy/ignition/parameters/<network>.json (copy the .example.json); the
 * Safe and timelock addresses of step 1 are passed to step 2 here. Both steps share Ignition's
 * journal (deploy/ignition/deployments/chain-<id>/), so a failed run resumes where it stopped.
 * Afterwards: `npx hardhat ignition verify chain-<id>` verifies every contract on the explorer.
 */
import { readFileSync } from "node:fs";
import { network } from "hardhat";
import {
  getCompatibilityFallbackHandlerDeployment,
  getProxyFactoryDeployment,
  getSafeL2SingletonDeployment,
} from "@safe-global/safe-deployments";
import GovernanceModule from "../deploy/ignition/modules/Governance.js";
import { type CanonicalSafe, treasuryModule } from "../deploy/ignition/modules/Treasury.js";

const connection = await network.create();
const name = connection.networkName;
const file = `deploy/ignition/parameters/${name === "baseSepolia" ? "base-sepolia" : name}.json`;
type Params = Record<string, string | number | boolean | string[]>;
const parameters = JSON.parse(readFileSync(file, "utf8")) as Record<string, Params | undefined>;
for (const key of ["council", "threshold"]) {
  if (parameters.Treasury?.[key] === undefined) throw new Error(`${file}: Treasury.${key} is required`);
}
const chainId = await (await connection.viem.getPublicClient()).getChainId();

/** Safe 1.5's canonical addresses on this chain, if Safe has deployed there (not on a local chain). */
function canonicalSafe(): CanonicalSafe | undefined {
  if (chainId === 31337) return undefined;
  const filter = { version: "1.5.0", network: String(chainId) };
  const at = (d: { networkAddresses: Record<string, string | string[]> } | undefined) => {
    const a = d?.networkAddresses[String(chainId)];
    return Array.isArray(a) ? a[0] : a;
  };
  const singleton = at(getSafeL2SingletonDeployment(filter));
  const factory = at(getProxyFactoryDeployment(filter));
  const handler = at(getCompatibilityFallbackHandlerDeployment(filter));
  return singleton && factory && handler ? { singleton, factory, handler } : undefined;
}
const canonical = canonicalSafe();
console.log(
  canonical
    ? `using Safe 1.5 canonical deployments: ${JSON.stringify(canonical)}`
    : "deploying Safe 1.5 from its artifacts",
);
const TreasuryModule = treasuryModule(canonical);
const treasury = (await connection.ignition.deploy(TreasuryModule, {
  parameters: { Treasury: parameters.Treasury ?? {} },
})) as unknown as Record<"safe" | "timelock" | "guard", { address: string }>;
const deployed = await connection.ignition.deploy(GovernanceModule, {
  parameters: {
    Treasury: parameters.Treasury ?? {},
    Protocol: { ...parameters.Protocol, treasury: treasury.safe.address },
    Governance: {
      ...parameters.Governance,
      timelock: treasury.timelock.address,
      safe: treasury.safe.address,
      guard: treasury.guard.address,
    },
  },
});
console.log(`deployed on ${name} (chain ${chainId}):`);
console.log(`  TreasurySafe        ${treasury.safe.address}`);
console.log(`  TimelockController  ${treasury.timelock.address}`);
for (const [key, contract] of Object.entries(deployed)) console.log(`  ${key.padEnd(19)} ${contract.address}`);
console.log(`verify: npx hardhat ignition verify chain-${chainId}`);

/**
 * `npm run deploy:base-sepolia`: the whole system on a public chain, in the order the modules need
 * (Treasury: timelock + Safe; then Governance: the token economy with the Safe as treasury, the
 * governor, the voter registry and the hand-over of every admin role to the timelock).
 *
 * Parameters come from deploy/ignition/parameters/<network>.json (copy the .example.json); the
 * Safe, timelock, guard and vesting addresses of step 1 are passed to step 2 here. Both steps
 * share Ignition's journal (deploy/ignition/deployments/chain-<id>/), so a failed run resumes
 * where it stopped.
 *
 * Before anything is sent: the quorum rule (no single genesis allocation reaches the quorum,
 * assertQuorumAboveAllocations). On a public chain the distributor's allocation goes to the
 * GenesisVesting wallet (it cannot vote while it vests). Last: every contract is verified on the
 * explorer with `--network <this network>`, and the run fails if the explorer refuses
 * (scripts/verify-deployment.ts; `X0T_SKIP_VERIFY=1` skips it, e.g. without an API key).
 */
import { network } from "hardhat";
import {
  getCompatibilityFallbackHandlerDeployment,
  getProxyFactoryDeployment,
  getSafeL2SingletonDeployment,
} from "@safe-global/safe-deployments";
import GovernanceModule, {
  DEFAULT_QUORUM,
  assertQuorumAboveAllocations,
} from "../deploy/ignition/modules/Governance.js";
import { type CanonicalSafe, treasuryModule } from "../deploy/ignition/modules/Treasury.js";
import { readParameters } from "./deploy-parameters.ts";
import { verifyDeployment } from "./verify-deployment.ts";

const connection = await network.create();
const name = connection.networkName;
const file = `deploy/ignition/parameters/${name === "baseSepolia" ? "base-sepolia" : name}.json`;
const parameters = readParameters(file);
for (const key of ["council", "threshold"]) {
  if (parameters.Treasury?.[key] === undefined) throw new Error(`${file}: Treasury.${key} is required`);
}
const publicClient = await connection.viem.getPublicClient();
const chainId = await publicClient.getChainId();
const X0T = 10n ** 18n;

// The quorum rule, before any transaction.
const big = (v: unknown, fallback: bigint) => (v === undefined ? fallback : BigInt(v as bigint | number));
const quorum = big(parameters.Governance?.quorum, DEFAULT_QUORUM);
const largest = assertQuorumAboveAllocations(quorum, {
  treasury: big(parameters.Protocol?.treasuryGenesis, 300_000_000n * X0T),
  distributor: big(parameters.Protocol?.distributorGenesis, 100_000_000n * X0T),
});
console.log(`quorum ${quorum} > sqrt of the largest genesis allocation (${largest}): no single holder meets it`);
const publicChain = chainId !== 31337;
if (publicChain && parameters.Protocol?.distributor !== undefined)
  throw new Error(
    `${file}: Protocol.distributor must not be set: the distributor's allocation vests (Treasury.vesting*)`,
  );
// The vesting start is a fixed parameter, not "now": a resumed run must repeat the same arguments.
for (const key of ["vestingBeneficiary", "vestingStart"]) {
  if (publicChain && parameters.Treasury?.[key] === undefined) throw new Error(`${file}: Treasury.${key} is required`);
}
const treasuryParameters = parameters.Treasury ?? {};
// A guardian that can veto, distinct from the council and the treasury (a council that vetoes its
// own critics' proposals would be no check at all).
if (publicChain) {
  const guardian = String(parameters.Governance?.guardian ?? "").toLowerCase();
  const council = ((parameters.Treasury?.council as string[] | undefined) ?? []).map((a) => a.toLowerCase());
  if (!/^0x[0-9a-f]{40}$/.test(guardian) || /^0x0{40}$/.test(guardian))
    throw new Error(`${file}: Governance.guardian is required on a public chain (a separate Safe)`);
  if (council.includes(guardian)) throw new Error(`${file}: Governance.guardian must not be a council member`);
}

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
  parameters: { Treasury: treasuryParameters },
})) as unknown as Record<"safe" | "timelock" | "guard" | "vesting", { address: string }>;
const deployed = await connection.ignition.deploy(GovernanceModule, {
  parameters: {
    Treasury: treasuryParameters,
    Protocol: {
      ...parameters.Protocol,
      treasury: treasury.safe.address,
      ...(publicChain ? { distributor: treasury.vesting.address } : {}),
    },
    Governance: {
      ...parameters.Governance,
      timelock: treasury.timelock.address,
      safe: treasury.safe.address,
      guard: treasury.guard.address,
    },
  },
});
// The deployer must hold nothing once the modules are done (a half-finished run is resumed above).
const [deployer] = await connection.viem.getWalletClients();
const ADMIN = "0x0000000000000000000000000000000000000000000000000000000000000000";
const roleAbi = [
  {
    type: "function",
    name: "hasRole",
    stateMutability: "view",
    inputs: [{ type: "bytes32" }, { type: "address" }],
    outputs: [{ type: "bool" }],
  },
] as const;
for (const address of [
  ...Object.values(deployed).map((c) => c.address),
  treasury.timelock.address,
] as `0x${string}`[]) {
  const holds = await publicClient
    .readContract({ address, abi: roleAbi, functionName: "hasRole", args: [ADMIN, deployer!.account.address] })
    .catch(() => false);
  if (holds) throw new Error(`the deployer still holds DEFAULT_ADMIN_ROLE on ${address}: the hand-over did not finish`);
}
console.log(`deployed on ${name} (chain ${chainId}):`);
console.log(`  TreasurySafe        ${treasury.safe.address}`);
console.log(`  TimelockController  ${treasury.timelock.address}`);
console.log(`  CouncilGuard        ${treasury.guard.address}`);
console.log(`  GenesisVesting      ${treasury.vesting.address}`);
for (const [key, contract] of Object.entries(deployed)) console.log(`  ${key.padEnd(19)} ${contract.address}`);
if (!publicChain || process.env.X0T_SKIP_VERIFY === "1") {
  console.log(
    `not verified; later: npm run verify:base-sepolia (or node scripts/verify-deployment.ts chain-${chainId} ${name})`,
  );
} else {
  verifyDeployment(`chain-${chainId}`, name);
  console.log(`verified every contract of chain-${chainId} on ${name}'s explorer`);
}

/**
 * `npm run deploy:base-sepolia`: the whole system on a public chain, in the order the modules need
 * (Treasury: timelock + Safe; then Governance: the token economy with the Safe as treasury, the
 * governor, the voter registry and the hand-over of every admin role to the timelock).
 *
 * Needs only BASE_SEPOLIA_RPC_URL and DEPLOYER_PRIVATE_KEY (environment or Hardhat's keystore) and
 * the parameters file deploy/ignition/parameters/base-sepolia.json (copy the .example.json).
 *
 * Before anything is sent (scripts/deploy-checks.ts): the parameters, the chain behind the URL,
 * Safe 1.5's canonical contracts on it, the quorum rule (no single genesis allocation reaches the
 * quorum), and the deployer's funds. Both modules share Ignition's journal
 * (deploy/ignition/deployments/chain-<id>/), so a run that stopped half-way resumes where it
 * stopped when the same command runs again. Then: the hand-over is checked (the deployer holds no
 * role), the addresses are written to deployments/<chainId>.json (committed; the relayer, the web
 * app and the Snapshot space read it), and every contract is verified on the explorer with
 * `--network <this network>` (scripts/verify-deployment.ts; X0T_SKIP_VERIFY=1 skips it).
 *
 * Overrides (tests, rehearsals): X0T_DEPLOY_PARAMETERS (parameters file), X0T_DEPLOYMENT_ID
 * (Ignition deployment id, default chain-<id>), X0T_DEPLOYMENTS_DIR (default deployments/).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { network } from "hardhat";
import { type Address, getAddress } from "viem";
import GovernanceModule, {
  DEFAULT_QUORUM,
  assertQuorumAboveAllocations,
} from "../deploy/ignition/modules/Governance.js";
import { treasuryModule } from "../deploy/ignition/modules/Treasury.js";
import { type Deployment, formatDeployment } from "../relayer/src/deployments/index.ts";
import {
  DeployError,
  PUBLIC_NETWORKS,
  checkCanonicalSafe,
  checkChain,
  checkFunds,
  dropUnsentTransactions,
  explainConfigError,
  explainDeployError,
  firstBlockOf,
  journalProgress,
} from "./deploy-checks.ts";
import { checkParameters, parametersFileFor } from "./deploy-parameters.ts";
import { verifyDeployment } from "./verify-deployment.ts";

const X0T = 10n ** 18n;
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

async function main(): Promise<void> {
  const connection = await network.create();
  const name = connection.networkName;
  const expected = PUBLIC_NETWORKS[name];
  const networkConfig = connection.networkConfig as { type: string; url?: { get(): Promise<string> } };
  const keyVariable = expected?.keyVariable ?? "the network's account";
  const publicClient = await connection.viem.getPublicClient();
  const chainId = await publicClient.getChainId();
  const url = networkConfig.type === "http" ? await networkConfig.url?.get().catch(() => undefined) : undefined;
  checkChain(name, expected, chainId, url);
  const publicChain = chainId !== 31337;
  console.log(`network ${name}: chain ${chainId}${expected ? ` (${expected.label})` : ""}`);

  const file = process.env.X0T_DEPLOY_PARAMETERS ?? parametersFileFor(name);
  const parameters = checkParameters(file, publicChain);
  console.log(`parameters: ${file}`);

  // The quorum rule, before any transaction.
  const big = (v: unknown, fallback: bigint) => (v === undefined ? fallback : BigInt(v as bigint | number));
  const quorum = big(parameters.Governance?.quorum, DEFAULT_QUORUM);
  const largest = assertQuorumAboveAllocations(quorum, {
    treasury: big(parameters.Protocol?.treasuryGenesis, 300_000_000n * X0T),
    distributor: big(parameters.Protocol?.distributorGenesis, 100_000_000n * X0T),
  });
  console.log(`quorum ${quorum} > sqrt of the largest genesis allocation (${largest}): no single holder meets it`);

  const canonical = await checkCanonicalSafe(publicClient, chainId);
  console.log(
    canonical
      ? `Safe 1.5 canonical contracts found (code hashes checked): singleton ${canonical.singleton}, factory ${canonical.factory}, handler ${canonical.handler}`
      : "local chain: deploying Safe 1.5 from its artifacts",
  );

  const [deployer] = await connection.viem.getWalletClients();
  if (!deployer) throw new DeployError(`network ${name} has no account to deploy from (${keyVariable})`);
  const from = getAddress(deployer.account.address);
  const deploymentId = process.env.X0T_DEPLOYMENT_ID ?? `chain-${chainId}`;
  const ignitionDir = join("deploy", "ignition");
  const progress = journalProgress(ignitionDir, deploymentId);
  const journalDir = join(ignitionDir, "deployments", deploymentId);
  const fees = await publicClient.estimateFeesPerGas();
  const balance = await publicClient.getBalance({ address: from });
  checkFunds({
    label: expected?.label ?? `chain ${chainId}`,
    keyVariable,
    deployer: from,
    balance,
    maxFeePerGas: fees.maxFeePerGas,
    resuming: progress !== undefined,
  });
  if (progress) {
    const pending = await publicClient.getTransactionCount({ address: from, blockTag: "pending" });
    for (const d of dropUnsentTransactions(journalDir, pending))
      console.log(
        `the earlier run prepared ${d.futureId}'s transaction (nonce ${d.nonce}) but it never reached the chain (the account's next nonce is ${pending}): it will be sent again`,
      );
  }
  console.log(
    progress
      ? `resuming the half-finished deployment ${deploymentId} (${Object.keys(progress.deployed).length} contracts already deployed, journal ${progress.dir})`
      : `new deployment ${deploymentId} from ${from} (journal ${journalDir})`,
  );

  const treasuryParameters = parameters.Treasury ?? {};
  let treasury: Record<"safe" | "timelock" | "guard" | "vesting" | "executor", { address: Address }>;
  let deployed: Record<string, { address: Address }>;
  try {
    treasury = (await connection.ignition.deploy(treasuryModule(canonical), {
      deploymentId,
      displayUi: true,
      parameters: { Treasury: treasuryParameters },
    })) as unknown as typeof treasury;
    deployed = (await connection.ignition.deploy(GovernanceModule, {
      deploymentId,
      displayUi: true,
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
    })) as unknown as typeof deployed;
  } catch (error) {
    throw explainDeployError(error, { journalDir, keyVariable }) ?? error;
  }

  // The deployer must hold nothing once the modules are done.
  for (const address of [...Object.values(deployed).map((c) => c.address), treasury.timelock.address]) {
    const holds = await publicClient
      .readContract({ address, abi: roleAbi, functionName: "hasRole", args: [ADMIN, from] })
      .catch(() => false);
    if (holds)
      throw new DeployError(`the deployer still holds DEFAULT_ADMIN_ROLE on ${address}: the hand-over did not finish`);
  }

  const contracts = {
    X0T: deployed.token!.address,
    RelayerRegistry: deployed.registry!.address,
    BandwidthCredit: deployed.credit!.address,
    EpochRewards: deployed.rewards!.address,
    QuadraticGovernor: deployed.governor!.address,
    VoterRegistry: deployed.voters!.address,
    EASPersonhoodSource: deployed.personhood!.address,
    TimelockController: treasury.timelock.address,
    TreasurySafe: treasury.safe.address,
    CouncilGuard: treasury.guard.address,
    TreasuryExecutor: treasury.executor.address,
    GenesisVesting: treasury.vesting.address,
  };
  const record: Deployment = {
    chainId,
    network: name,
    rpcUrl: expected?.publicRpcUrl,
    explorer: expected?.explorer,
    deploymentId,
    deployer: from,
    startBlock: firstBlockOf(journalDir),
    contracts,
    council: (treasuryParameters.council as string[]).map((a) => getAddress(a)),
    threshold: Number(treasuryParameters.threshold),
    safe: canonical
      ? {
          singleton: canonical.singleton as Address,
          factory: canonical.factory as Address,
          handler: canonical.handler as Address,
        }
      : undefined,
  };
  const outDir = process.env.X0T_DEPLOYMENTS_DIR ?? "deployments";
  const outFile = join(outDir, `${chainId}.json`);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(outFile, formatDeployment(record));

  console.log(`deployed on ${name} (chain ${chainId}):`);
  for (const [key, address] of Object.entries(contracts)) console.log(`  ${key.padEnd(20)} ${address}`);
  console.log(`addresses written to ${outFile} (commit it: the relayer, the web app and the Snapshot space read it)`);
  if (!publicChain || process.env.X0T_SKIP_VERIFY === "1") {
    console.log(
      `not verified; later: npm run verify:base-sepolia (or node scripts/verify-deployment.ts ${deploymentId} ${name})`,
    );
  } else {
    console.log(`verifying ${deploymentId} on ${name}'s explorer…`);
    verifyDeployment(deploymentId, name);
    console.log(`verified every contract of ${deploymentId} on ${name}'s explorer`);
  }
}

try {
  await main();
} catch (error) {
  const explained = error instanceof DeployError ? error : explainConfigError(error);
  if (explained) {
    console.error(`deploy: ${explained.shortMessage}`);
    process.exitCode = 1;
  } else throw error;
}

/**
 * The chain side of `npm start`: compile, deploy the protocol, its governance and the treasury Safe
 * with the same Ignition modules as Base Sepolia, then move the demo's money the way it moves on a
 * real network — the council pays each operator its stake from the treasury Safe (2 of 3
 * signatures), each operator registers its relay with its static keys and a node signer, and a
 * payer buys credit and authorises the client key its entry pays with.
 */
import { rm, writeFile } from "node:fs/promises";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { type Address, getAddress, type Hex, parseEther, parseUnits } from "viem";
import { authorizeClientKey, buyCredit, GB, registerRelayer } from "../../relayer/src/chain/account.ts";
import { executeSafeTx, proposeTokenTransfer, signSafeTx } from "../../relayer/src/governance/treasury.ts";
import { loadEvmKey } from "../../relayer/src/node/evmkey.ts";
import { loadOrCreateKeys } from "../../relayer/src/node/keyfile.ts";
import GovernanceModule from "../../deploy/ignition/modules/Governance.js";
import TreasuryModule from "../../deploy/ignition/modules/Treasury.js";

type Connection = Awaited<ReturnType<HardhatRuntimeEnvironment["network"]["create"]>>;

/** Stake each operator registers with; the council pays 2% more (1% of a transfer is burned). */
export const STAKE = 10_000n * 10n ** 18n;
export const PAYOUT = 10_200n * 10n ** 18n;
/** The payer's own X0T (it buys 1 GB = 1 X0T of credit with it). */
export const PAYER_PAYOUT = 10n * 10n ** 18n;

export interface Deployment {
  chainId: number;
  rpcUrl: string;
  contracts: Record<string, Address>;
  council: Address[];
}

/**
 * `hardhat build` in this process, its output (solc's warnings about OpenZeppelin's code, say)
 * written to `logFile` rather than the terminal, or to both with `echo`.
 */
export async function compileContracts(hre: HardhatRuntimeEnvironment, logFile: string, echo: boolean): Promise<void> {
  writeFileSync(logFile, ""); // there even when nothing needed compiling
  const writes = [process.stdout, process.stderr].map((stream) => {
    const original = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      appendFileSync(logFile, chunk);
      if (echo) return (original as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
      const callback = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof stream.write;
    return () => (stream.write = original);
  });
  try {
    await hre.tasks.getTask("build").run({ quiet: true, noTests: true });
  } finally {
    for (const restore of writes) restore();
  }
}

/** Deploys everything with Ignition (a new chain each start: the old journal is dropped first). */
export async function deployAll(connection: Connection, chainId: number, rpcUrl: string): Promise<Deployment> {
  await rm(join("deploy", "ignition", "deployments", `chain-${chainId}`), { recursive: true, force: true });
  // The council of the local treasury Safe: test accounts 1–3, any 2 of them sign.
  const council = (await connection.viem.getWalletClients()).slice(1, 4).map((w) => w.account.address);
  // The Governance deployment shares the journal, so it repeats the Treasury's parameters.
  const treasuryParameters = { council, threshold: 2, minDelay: 120 };
  const treasury = (await connection.ignition.deploy(TreasuryModule, {
    displayUi: false,
    parameters: { Treasury: treasuryParameters },
  })) as unknown as Record<"safe" | "timelock" | "guard" | "executor", { address: Address }>;
  const { token, registry, credit, rewards, governor, voters } = await connection.ignition.deploy(GovernanceModule, {
    displayUi: false,
    parameters: {
      Treasury: treasuryParameters,
      // One-minute epochs and k = 1 make the local demo move; Base Sepolia uses the defaults.
      Protocol: { epochLength: 60, minAttestations: 1, unbondingDelay: 600, treasury: treasury.safe.address },
      // Two-minute voting and timelock delays for the demo.
      Governance: {
        timelock: treasury.timelock.address,
        safe: treasury.safe.address,
        guard: treasury.guard.address,
        votingDelay: 60,
        votingPeriod: 120,
      },
    },
  });
  return {
    chainId,
    rpcUrl,
    contracts: {
      X0T: token.address,
      RelayerRegistry: registry.address,
      BandwidthCredit: credit.address,
      EpochRewards: rewards.address,
      QuadraticGovernor: governor.address,
      VoterRegistry: voters.address,
      TimelockController: treasury.timelock.address,
      TreasurySafe: treasury.safe.address,
      CouncilGuard: treasury.guard.address,
      TreasuryExecutor: treasury.executor.address,
    },
    council,
  };
}

export async function writeDeployment(file: string, deployment: Deployment): Promise<void> {
  await writeFile(file, JSON.stringify(deployment, null, 2) + "\n");
}

async function clients(connection: Connection, deployment: Deployment) {
  const publicClient = (await connection.viem.getPublicClient()) as never;
  const wallets = await connection.viem.getWalletClients();
  const contracts = {
    X0T: deployment.contracts.X0T!,
    RelayerRegistry: deployment.contracts.RelayerRegistry!,
    BandwidthCredit: deployment.contracts.BandwidthCredit!,
    EpochRewards: deployment.contracts.EpochRewards!,
  };
  const of = (i: number) => ({ public: publicClient, wallet: wallets[i] as never, contracts });
  return { publicClient, wallets, contracts, of };
}

/**
 * Council payouts from the treasury Safe: `PAYOUT` to each operator account, `PAYER_PAYOUT` to the
 * payer. Council members sign on their own machines (`x0t treasury sign`); here their node
 * accounts (test accounts 1 and 2) sign.
 */
export async function payOperators(
  connection: Connection,
  deployment: Deployment,
  operatorAccounts: readonly number[],
  payerAccount: number,
): Promise<void> {
  const { publicClient, wallets, contracts } = await clients(connection, deployment);
  const [council1, council2] = [wallets[1]!, wallets[2]!];
  const payouts: [Address, bigint][] = [
    ...operatorAccounts.map((i) => [wallets[i]!.account.address, PAYOUT] as [Address, bigint]),
    [wallets[payerAccount]!.account.address, PAYER_PAYOUT],
  ];
  for (const [to, amount] of payouts) {
    let file = await proposeTokenTransfer(publicClient, {
      safe: deployment.contracts.TreasurySafe!,
      token: contracts.X0T,
      to,
      amount,
      description: `local demo: fund ${to}`,
    });
    for (const member of [council1, council2])
      file = await signSafeTx(publicClient, file, {
        ...member.account,
        signTypedData: (typed: never) => member.signTypedData(typed),
      } as never);
    const hash = await executeSafeTx(publicClient, council1 as never, file);
    await (
      publicClient as { waitForTransactionReceipt: (a: { hash: Hex }) => Promise<unknown> }
    ).waitForTransactionReceipt({ hash });
  }
}

export interface RelaySpec {
  name: string;
  region: string;
  /** Test account of its operator. */
  account: number;
  port: number;
  keys: string;
  signerKey: string;
}

/**
 * Each operator registers its relay (`x0t register`: stake with a permit, endpoint, region, keys
 * hash, node signer with its consent), all at once; the deployer then funds each node signer with
 * ETH for the gas of submissions, lock landings and claims. Keys are new on every start.
 */
export async function registerRelays(
  connection: Connection,
  deployment: Deployment,
  relays: readonly RelaySpec[],
): Promise<Address[]> {
  const { wallets, of } = await clients(connection, deployment);
  const signers = await Promise.all(
    relays.map(async (relay) => {
      await rm(relay.keys, { force: true });
      await rm(relay.signerKey, { force: true });
      const { keys } = loadOrCreateKeys(relay.keys);
      const signer = loadEvmKey(relay.signerKey, "signer", { create: true });
      await registerRelayer(of(relay.account), {
        endpoint: `127.0.0.1:${relay.port}`,
        region: relay.region,
        keysHash: `0x${keys.keysHash.toString("hex")}`,
        signer,
        amount: STAKE,
      });
      return signer.address;
    }),
  );
  const deployer = wallets[0]!;
  for (const signer of signers) {
    const hash = await deployer.sendTransaction({ to: signer, value: parseEther("10") });
    await (await connection.viem.getPublicClient()).waitForTransactionReceipt({ hash });
  }
  return relays.map((r) => getAddress(wallets[r.account]!.account.address));
}

/** The payer buys 1 GB (1 X0T) of credit and authorises the entry's client key, capped at 1 GB an epoch. */
export async function preparePayer(
  connection: Connection,
  deployment: Deployment,
  payerAccount: number,
  clientKeyFile: string,
): Promise<{ payer: Address; clientKey: Address }> {
  const { wallets, of } = await clients(connection, deployment);
  await rm(clientKeyFile, { force: true });
  const key = loadEvmKey(clientKeyFile, "client key", { create: true });
  await buyCredit(of(payerAccount), parseUnits("1", 18));
  await authorizeClientKey(of(payerAccount), key, 1n * GB);
  return { payer: getAddress(wallets[payerAccount]!.account.address), clientKey: key.address };
}

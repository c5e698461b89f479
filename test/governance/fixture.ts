/**
 * The governed system on Hardhat's in-process EVM: the real EAS and SchemaRegistry at the OP-stack
 * predeploy addresses (with a test attester playing Coinbase), the Treasury module (timelock + Safe
 * 1.5 with the TreasuryExecutor module and the CouncilGuard), then the Governance module (protocol +
 * voter registry + EAS source + QuadraticGovernor + the hand-over of every admin role), with short
 * delays.
 */
import {
  type Abi,
  type Address,
  type Hex,
  encodeAbiParameters,
  encodeFunctionData,
  keccak256,
  parseEventLogs,
  stringToHex,
  zeroAddress,
  zeroHash,
} from "viem";
import EASArtifact from "@ethereum-attestation-service/eas-contracts/artifacts/contracts/EAS.sol/EAS.json" with { type: "json" };
import SchemaRegistryArtifact from "@ethereum-attestation-service/eas-contracts/artifacts/contracts/SchemaRegistry.sol/SchemaRegistry.json" with { type: "json" };
import { BASE_SEPOLIA_EAS } from "../../deploy/ignition/modules/Governance.js";
import GovernanceModule from "../../deploy/ignition/modules/Governance.js";
import TreasuryModule from "../../deploy/ignition/modules/Treasury.js";
import SafeL2 from "@safe-global/safe-smart-account/build/artifacts/contracts/SafeL2.sol/SafeL2.json" with { type: "json" };
import { SAFE_TX_TYPES } from "../../relayer/src/governance/treasury.ts";
import { TEST_PARAMETERS, X0T, type Connection } from "../helpers/protocol.ts";

export const MIN_DELAY = 60;
export const VOTING_DELAY = 10;
export const VOTING_PERIOD = 300;
/** sqrt units: 1 X0T of votes has weight 1e9. */
export const UNIT = 10n ** 9n;
export const QUORUM = 1_100n * UNIT; // more than alice alone (sqrt(990,000 X0T) ≈ 995e9): no single voter passes anything
export const THRESHOLD = 100n * UNIT; // sqrt(10,000 X0T)
export const PAYOUT_CAP = 500_000n * 10n ** 18n;
export const ETH_CAP = 10n ** 18n;
export const PAYOUT_PERIOD = 30 * 24 * 3600;
export const GUARDIAN_TERM = 30 * 24 * 3600;
/** The schema of Coinbase's "Verified Account" attestations (registered here by the test). */
export const VERIFIED_ACCOUNT_SCHEMA = "bool verifiedAccount";

export const easAbi = EASArtifact.abi as Abi;
export const schemaRegistryAbi = SchemaRegistryArtifact.abi as Abi;

type Wallets = Awaited<ReturnType<Connection["viem"]["getWalletClients"]>>;

/**
 * Puts the real EAS and SchemaRegistry (the npm package's audited build) at the OP-stack predeploy
 * addresses, as on Base Sepolia: each is deployed normally, then its runtime code (immutables
 * included: EAS's immutable is the registry's predeploy address, given to its constructor) is
 * copied there with hardhat_setCode. Neither keeps constructor-written storage, so the copies behave
 * like the predeploys. Registers the Verified Account schema; returns its uid.
 */
export async function installEAS(connection: Connection, deployer: Wallets[number]): Promise<Hex> {
  const { viem, provider } = connection;
  const publicClient = await viem.getPublicClient();
  const place = async (artifact: { abi: unknown; bytecode: string }, args: unknown[], at: string) => {
    const hash = await deployer.deployContract({
      abi: artifact.abi as Abi,
      bytecode: artifact.bytecode as Hex,
      args,
      account: deployer.account,
      chain: deployer.chain,
    });
    const { contractAddress } = await publicClient.waitForTransactionReceipt({ hash });
    const code = await publicClient.getCode({ address: contractAddress! });
    await provider.request({ method: "hardhat_setCode", params: [at, code] });
  };
  await place(SchemaRegistryArtifact, [], BASE_SEPOLIA_EAS.schemaRegistry);
  await place(EASArtifact, [BASE_SEPOLIA_EAS.schemaRegistry], BASE_SEPOLIA_EAS.eas);
  return installEASSchema(connection, deployer, VERIFIED_ACCOUNT_SCHEMA);
}

/** Registers a revocable schema without resolver in the SchemaRegistry; returns its uid. */
export async function installEASSchema(connection: Connection, by: Wallets[number], schema: string): Promise<Hex> {
  const publicClient = await connection.viem.getPublicClient();
  const hash = await by.writeContract({
    address: BASE_SEPOLIA_EAS.schemaRegistry,
    abi: schemaRegistryAbi,
    functionName: "register",
    args: [schema, zeroAddress, true],
    account: by.account,
    chain: by.chain,
  });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  const [registered] = parseEventLogs({ abi: schemaRegistryAbi, logs: receipt.logs, eventName: "Registered" });
  return (registered as unknown as { args: { uid: Hex } }).args.uid;
}

/** An EAS attestation by `attester` to `recipient`; returns its uid. */
export async function attest(
  connection: Connection,
  attester: Wallets[number],
  recipient: Address,
  options: { schema: Hex; expirationTime?: bigint; verified?: boolean },
): Promise<Hex> {
  const publicClient = await connection.viem.getPublicClient();
  const data = encodeAbiParameters([{ type: "bool" }], [options.verified ?? true]);
  const hash = await attester.writeContract({
    address: BASE_SEPOLIA_EAS.eas,
    abi: easAbi,
    functionName: "attest",
    args: [
      {
        schema: options.schema,
        data: {
          recipient,
          expirationTime: options.expirationTime ?? 0n,
          revocable: true,
          refUID: zeroHash,
          data,
          value: 0n,
        },
      },
    ],
    account: attester.account,
    chain: attester.chain,
  });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  const [attested] = parseEventLogs({ abi: easAbi, logs: receipt.logs, eventName: "Attested" });
  return (attested as unknown as { args: { uid: Hex } }).args.uid;
}

/** The attester revokes `uid`. */
export async function revoke(connection: Connection, attester: Wallets[number], schema: Hex, uid: Hex) {
  const publicClient = await connection.viem.getPublicClient();
  const hash = await attester.writeContract({
    address: BASE_SEPOLIA_EAS.eas,
    abi: easAbi,
    functionName: "revoke",
    args: [{ schema, data: { uid, value: 0n } }],
    account: attester.account,
    chain: attester.chain,
  });
  await publicClient.waitForTransactionReceipt({ hash });
}

export async function deployGoverned(
  connection: Connection,
  overrides: {
    quorum?: bigint;
    minDelay?: number;
    protocol?: Record<string, unknown>;
    governance?: Record<string, unknown>;
  } = {},
) {
  const { viem, ignition } = connection;
  const wallets = await viem.getWalletClients();
  const [deployer, c1, c2, c3] = wallets;
  const attester = wallets[10];
  const guardian = wallets[11];
  if (!deployer || !c1 || !c2 || !c3 || !attester || !guardian) throw new Error("need 12 accounts");
  const council = [c1, c2, c3];
  const schema = await installEAS(connection, deployer);
  const deployed = await ignition.deploy(TreasuryModule, {
    parameters: {
      Treasury: {
        minDelay: overrides.minDelay ?? MIN_DELAY,
        council: council.map((w) => w.account.address),
        threshold: 2,
        payoutCap: PAYOUT_CAP,
        ethCap: ETH_CAP,
        payoutPeriod: PAYOUT_PERIOD,
      },
    },
  });
  // The Safe artifacts are plain JSON, so Ignition cannot type this module's results.
  const treasury = deployed as unknown as Record<"safe" | "timelock" | "guard" | "executor", { address: Address }>;
  const safeAddress = treasury.safe.address;
  const timelockAddress = treasury.timelock.address;
  const gov = await ignition.deploy(GovernanceModule, {
    parameters: {
      Protocol: { ...TEST_PARAMETERS, treasury: safeAddress, ...overrides.protocol },
      Governance: {
        timelock: timelockAddress,
        safe: safeAddress,
        guard: treasury.guard.address,
        votingDelay: VOTING_DELAY,
        votingPeriod: VOTING_PERIOD,
        proposalThreshold: THRESHOLD,
        quorum: overrides.quorum ?? QUORUM,
        guardian: guardian.account.address,
        guardianTerm: GUARDIAN_TERM,
        eas: BASE_SEPOLIA_EAS.eas,
        easSchema: schema,
        easAttester: attester.account.address,
        ...overrides.governance,
      },
    },
  });
  const at = viem.getContractAt;
  const voters = await at("VoterRegistry", gov.voters.address);
  const personhood = await at("EASPersonhoodSource", gov.personhood.address);
  /** Plays Coinbase: attests that `w` is a verified account; `w` then registers itself. */
  const registerHuman = async (w: Wallets[number]) => {
    const uid = await attest(connection, attester, w.account.address, { schema });
    const hash = await voters.write.register([personhood.address, uid], { account: w.account });
    const receipt = await (await viem.getPublicClient()).waitForTransactionReceipt({ hash });
    return { uid, gas: receipt.gasUsed };
  };
  return {
    deployer,
    council,
    attester,
    guardian,
    schema,
    wallets,
    safeAddress,
    registerHuman,
    timelock: await at("TimelockController", timelockAddress),
    guard: await at("CouncilGuard", treasury.guard.address),
    executor: await at("TreasuryExecutor", treasury.executor.address),
    governor: await at("QuadraticGovernor", gov.governor.address),
    voters,
    personhood,
    token: await at("X0T", gov.token.address),
    registry: await at("RelayerRegistry", gov.registry.address),
    credit: await at("BandwidthCredit", gov.credit.address),
    rewards: await at("EpochRewards", gov.rewards.address),
  };
}

export const safeAbi = SafeL2.abi;

/** A council-signed Safe transaction: EIP-712 SafeTx signatures of `signers`, sorted by address. */
export async function execSafeTransaction(
  connection: Connection,
  safe: Address,
  signers: Awaited<ReturnType<Connection["viem"]["getWalletClients"]>>,
  tx: {
    to: Address;
    data: Hex;
    value?: bigint;
    operation?: 0 | 1;
    refund?: { gasPrice: bigint; gasToken: Address; receiver: Address };
  },
) {
  const { viem } = connection;
  const publicClient = await viem.getPublicClient();
  const chainId = await publicClient.getChainId();
  const nonce = (await publicClient.readContract({ address: safe, abi: safeAbi, functionName: "nonce" })) as bigint;
  const message = {
    to: tx.to,
    value: tx.value ?? 0n,
    data: tx.data,
    operation: tx.operation ?? 0,
    safeTxGas: 0n,
    baseGas: tx.refund ? 100_000n : 0n,
    gasPrice: tx.refund?.gasPrice ?? 0n,
    gasToken: tx.refund?.gasToken ?? zeroAddress,
    refundReceiver: tx.refund?.receiver ?? zeroAddress,
    nonce,
  };
  const types = SAFE_TX_TYPES;
  const sorted = [...signers].sort((a, b) => (BigInt(a.account.address) < BigInt(b.account.address) ? -1 : 1));
  const signatures: Hex[] = [];
  for (const s of sorted) {
    signatures.push(
      await s.signTypedData({
        account: s.account,
        domain: { chainId, verifyingContract: safe },
        types,
        primaryType: "SafeTx",
        message,
      }),
    );
  }
  const packed = `0x${signatures.map((sig) => sig.slice(2)).join("")}` as Hex;
  const [sender] = signers;
  if (!sender) throw new Error("no signer");
  const hash = await sender.writeContract({
    address: safe,
    abi: safeAbi,
    functionName: "execTransaction",
    args: [
      message.to,
      message.value,
      message.data,
      message.operation,
      message.safeTxGas,
      message.baseGas,
      message.gasPrice,
      message.gasToken,
      message.refundReceiver,
      packed,
    ],
    account: sender.account,
    chain: sender.chain,
  });
  return publicClient.waitForTransactionReceipt({ hash });
}

/** Calldata for the timelock: make the treasury Safe call `to` through the TreasuryExecutor. */
export function safeCall(executor: Address, safe: Address, to: Address, data: Hex, value = 0n) {
  return {
    target: executor,
    calldata: encodeFunctionData({
      abi: [
        {
          type: "function",
          name: "exec",
          stateMutability: "nonpayable",
          inputs: [
            { name: "safe", type: "address" },
            { name: "to", type: "address" },
            { name: "value", type: "uint256" },
            { name: "data", type: "bytes" },
          ],
          outputs: [{ type: "bytes" }],
        },
      ],
      functionName: "exec",
      args: [safe, to, value, data],
    }),
  };
}

export { X0T };

export const Vote = { against: 0, for: 1, abstain: 2 } as const;
export const State = {
  pending: 0,
  active: 1,
  canceled: 2,
  defeated: 3,
  succeeded: 4,
  queued: 5,
  expired: 6,
  executed: 7,
} as const;

/** floor(sqrt(n)) */
export function sqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = n;
  let y = (x + 1n) / 2n;
  while (y < x) [x, y] = [y, (y + n / y) / 2n];
  return x;
}

/** Proposal helpers bound to one deployed system. */
export function governance(connection: Connection, sys: Awaited<ReturnType<typeof deployGoverned>>) {
  const { viem, networkHelpers } = connection;
  type Wallet = (typeof sys.wallets)[number];
  const propose = async (targets: Address[], calldatas: Hex[], description: string, by: Wallet) => {
    const publicClient = await viem.getPublicClient();
    const values = targets.map(() => 0n);
    const hash = await sys.governor.write.propose([targets, values, calldatas, description], { account: by.account });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    const [created] = parseEventLogs({ abi: sys.governor.abi, logs: receipt.logs, eventName: "ProposalCreated" });
    return {
      id: created!.args.proposalId,
      targets,
      values,
      calldatas,
      descriptionHash: keccak256(stringToHex(description)),
      args: [targets, values, calldatas, keccak256(stringToHex(description))] as const,
    };
  };
  type Proposal = Awaited<ReturnType<typeof propose>>;
  return {
    propose,
    /** Gives `to` tokens from the deployer (the distributor) and self-delegates. */
    fund: async (to: Wallet, amount: bigint) => {
      await sys.token.write.transfer([to.account.address, amount]);
      await sys.token.write.delegate([to.account.address], { account: to.account });
      return sys.token.read.getVotes([to.account.address]);
    },
    /** `voters` vote for `p`; the period ends; it is queued and its delay passes. */
    passAndQueue: async (p: Proposal, voters: Wallet[]) => {
      await networkHelpers.time.increase(Number(await sys.governor.read.votingDelay()) + 1);
      for (const v of voters) await sys.governor.write.castVote([p.id, Vote.for], { account: v.account });
      await networkHelpers.time.increase(Number(await sys.governor.read.votingPeriod()));
      await sys.governor.write.queue([...p.args]);
      await networkHelpers.time.increase(Number(await sys.timelock.read.getMinDelay()));
    },
    state: (p: Proposal) => sys.governor.read.state([p.id]),
  };
}

/** Asserts that `action` reverts with the custom error (or require code) `name`. */
export async function reverts(action: Promise<unknown>, name: string): Promise<void> {
  const { rejects } = await import("node:assert/strict");
  await rejects(action, (error: unknown) => String(error).includes(name));
}

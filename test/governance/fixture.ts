/**
 * The governed system on Hardhat's in-process EVM: the Treasury module (timelock + Safe 1.5 with
 * the timelock as module and the CouncilGuard), then the Governance module (protocol + voter
 * registry + QuadraticGovernor + the hand-over of every admin role), with short delays.
 */
import { type Address, type Hex, zeroAddress } from "viem";
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

export async function deployGoverned(connection: Connection) {
  const { viem, ignition } = connection;
  const wallets = await viem.getWalletClients();
  const [deployer, c1, c2, c3] = wallets;
  if (!deployer || !c1 || !c2 || !c3) throw new Error("need 4 accounts");
  const council = [c1, c2, c3];
  const deployed = await ignition.deploy(TreasuryModule, {
    parameters: { Treasury: { minDelay: MIN_DELAY, council: council.map((w) => w.account.address), threshold: 2 } },
  });
  // The Safe artifacts are plain JSON, so Ignition cannot type this module's results.
  const treasury = deployed as unknown as Record<"safe" | "timelock" | "guard", { address: Address }>;
  const safeAddress = treasury.safe.address;
  const timelockAddress = treasury.timelock.address;
  const gov = await ignition.deploy(GovernanceModule, {
    parameters: {
      Protocol: { ...TEST_PARAMETERS, treasury: safeAddress },
      Governance: {
        timelock: timelockAddress,
        safe: safeAddress,
        votingDelay: VOTING_DELAY,
        votingPeriod: VOTING_PERIOD,
        proposalThreshold: THRESHOLD,
        quorum: QUORUM,
      },
    },
  });
  const at = viem.getContractAt;
  return {
    deployer,
    council,
    wallets,
    safeAddress,
    timelock: await at("TimelockController", timelockAddress),
    guard: await at("CouncilGuard", treasury.guard.address),
    governor: await at("QuadraticGovernor", gov.governor.address),
    voters: await at("VoterRegistry", gov.voters.address),
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
  tx: { to: Address; data: Hex; value?: bigint; operation?: 0 | 1 },
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
    baseGas: 0n,
    gasPrice: 0n,
    gasToken: zeroAddress,
    refundReceiver: zeroAddress,
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
    args: [message.to, message.value, message.data, message.operation, 0n, 0n, 0n, zeroAddress, zeroAddress, packed],
    account: sender.account,
    chain: sender.chain,
  });
  return publicClient.waitForTransactionReceipt({ hash });
}

export { X0T };

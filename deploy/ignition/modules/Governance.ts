import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { zeroAddress } from "viem";
import ProtocolModule from "./Protocol.js";

/**
 * Governance over the deployed protocol (docs/governance.md): the VoterRegistry with its EAS
 * personhood source, the QuadraticGovernor with its guardian, and the hand-over that leaves the
 * timelock holding every admin role.
 *
 * Parameters: `timelock`, `safe` and `guard` (from the Treasury deployment); voting delay and period
 * (seconds); proposal threshold and quorum (sqrt units: 1 X0T of votes = 1e9); the guardian and its
 * term (seconds); the EAS contract, schema and attester of the personhood source (defaults: Base
 * Sepolia's EAS predeploy and Coinbase's "Verified Account" schema and attester). The Protocol
 * module runs first with `treasury` = the Safe (pass it as Protocol.treasury).
 *
 * After this module: DEFAULT_ADMIN_ROLE of X0T, RelayerRegistry, BandwidthCredit, EpochRewards,
 * VoterRegistry and the timelock itself belongs to the timelock only (the deployer renounced);
 * the governor is the timelock's only proposer and canceller; executing is open to anyone; nobody
 * registers voters but the voters themselves; the Safe, the timelock, the governor and the protocol
 * contracts can never be voters; the council guard knows X0T; the governor's live slash proposals
 * freeze the slashed operator's withdrawals (RelayerRegistry.setSlashGovernor).
 */

/** Base Sepolia's EAS predeploy and Coinbase Verifications (sources in docs/governance.md). */
export const BASE_SEPOLIA_EAS = {
  eas: "0x4200000000000000000000000000000000000021",
  schemaRegistry: "0x4200000000000000000000000000000000000020",
  verifiedAccountSchema: "0x2f34a2ffe5f87b2f45fbc7c784896b768d77261e2f24f77341ae43751c765a69",
  attester: "0xB5644397a9733f86Cacd928478B29b4cD6041C45",
  indexer: "0xd147a19c3B085Fb9B0c15D2EAAFC6CB086ea849B",
} as const;

/** Default quorum: sqrt(400,000,000 X0T) = 2e13, the whole genesis held by one address. */
export const DEFAULT_QUORUM = 10n ** 9n * 20_000n;

/**
 * The quorum rule, checked by scripts/deploy.ts before anything is sent: no single genesis
 * allocation may reach the quorum on its own (weight = floor(sqrt(wei))). Returns the largest
 * allocation's weight; throws naming the allocation that would.
 */
export function assertQuorumAboveAllocations(quorum: bigint, allocations: Record<string, bigint>): bigint {
  let largest = 0n;
  for (const [name, amount] of Object.entries(allocations)) {
    const weight = isqrt(amount);
    if (weight >= quorum)
      throw new Error(`quorum ${quorum} is reached by the genesis allocation "${name}" alone (sqrt = ${weight})`);
    if (weight > largest) largest = weight;
  }
  return largest;
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = n;
  let y = (x + 1n) / 2n;
  while (y < x) [x, y] = [y, (y + n / y) / 2n];
  return x;
}

export default buildModule("Governance", (m) => {
  const deployer = m.getAccount(0);
  const protocol = m.useModule(ProtocolModule);
  const { token, registry, credit, rewards } = protocol;
  const timelock = m.contractAt("TimelockController", m.getParameter<string>("timelock"));
  const guard = m.contractAt("CouncilGuard", m.getParameter<string>("guard"));
  const safe = m.getParameter<string>("safe");

  const voters = m.contract("VoterRegistry", [deployer, token]);
  const personhood = m.contract("EASPersonhoodSource", [
    m.getParameter("eas", BASE_SEPOLIA_EAS.eas),
    m.getParameter("easSchema", BASE_SEPOLIA_EAS.verifiedAccountSchema),
    m.getParameter("easAttester", BASE_SEPOLIA_EAS.attester),
  ]);
  const governor = m.contract("QuadraticGovernor", [
    token,
    timelock,
    voters,
    m.getParameter("votingDelay", 24 * 3600),
    m.getParameter("votingPeriod", 5 * 24 * 3600),
    m.getParameter("proposalThreshold", 10n ** 9n * 1_000n), // sqrt(1,000,000 X0T)
    m.getParameter("quorum", DEFAULT_QUORUM),
    m.getParameter("guardian", zeroAddress),
    m.getParameter("guardianTerm", 180 * 24 * 3600),
    registry,
  ]);

  // The council guard learns which token is X0T (a one-time call of its deployer).
  m.call(guard, "setToken", [token]);

  // Timelock: the governor proposes and cancels; the deployer steps out last.
  const proposer = m.staticCall(timelock, "PROPOSER_ROLE");
  const canceller = m.staticCall(timelock, "CANCELLER_ROLE");
  const grantProposer = m.call(timelock, "grantRole", [proposer, governor], { id: "timelockProposer" });
  const grantCanceller = m.call(timelock, "grantRole", [canceller, governor], { id: "timelockCanceller" });

  // Voter registry: EAS attestations register voters; the DAO's own addresses never can.
  const wiring = [
    m.call(voters, "setSource", [personhood, true]),
    ...Object.entries({ safe, timelock, governor, token, registry, credit, rewards }).map(([name, account]) =>
      m.call(voters, "exclude", [account], { id: `votersExclude_${name}` }),
    ),
  ];
  const adminRole = m.staticCall(voters, "DEFAULT_ADMIN_ROLE");
  const votersAdmin = m.call(voters, "grantRole", [adminRole, timelock], { id: "votersAdmin" });
  m.call(voters, "renounceRole", [adminRole, deployer], { id: "votersRenounceAdmin", after: [...wiring, votersAdmin] });

  // A live slash proposal of this governor freezes the operator's withdrawals (anyone calls
  // RelayerRegistry.freezeForSlash), so unbonding cannot outrun the vote; set while the deployer
  // is still the registry's admin.
  const slashGovernor = m.call(registry, "setSlashGovernor", [governor]);

  // Every protocol contract: the timelock becomes admin, then the deployer renounces, after the
  // Protocol module's own wiring calls are done.
  for (const [name, contract] of Object.entries({ token, registry, credit, rewards })) {
    const grant = m.call(contract, "grantRole", [adminRole, timelock], { id: `${name}Admin`, after: [ProtocolModule] });
    m.call(contract, "renounceRole", [adminRole, deployer], { id: `${name}Renounce`, after: [grant, slashGovernor] });
  }
  m.call(timelock, "renounceRole", [adminRole, deployer], {
    id: "timelockRenounce",
    after: [grantProposer, grantCanceller],
  });

  return { governor, voters, personhood, timelock, token, registry, credit, rewards };
});

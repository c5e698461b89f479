import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import ProtocolModule from "./Protocol.js";

/**
 * Governance over the deployed protocol (docs/governance.md): the VoterRegistry, the
 * QuadraticGovernor, and the hand-over that leaves the timelock holding every admin role.
 *
 * Parameters: `timelock` and `safe` (from the Treasury deployment), voting delay and period
 * (seconds), proposal threshold and quorum (sqrt units: 1 X0T of votes = 1e9). The Protocol module
 * runs first with `treasury` = the Safe (pass it as Protocol.treasury).
 *
 * After this module: DEFAULT_ADMIN_ROLE of X0T, RelayerRegistry, BandwidthCredit, EpochRewards,
 * VoterRegistry and the timelock itself belongs to the timelock only (the deployer renounced);
 * the governor is the timelock's only proposer and canceller; executing is open to anyone; the
 * council Safe and the timelock may register voters.
 */
export default buildModule("Governance", (m) => {
  const deployer = m.getAccount(0);
  const protocol = m.useModule(ProtocolModule);
  const { token, registry, credit, rewards } = protocol;
  const timelock = m.contractAt("TimelockController", m.getParameter<string>("timelock"));
  const safe = m.getParameter<string>("safe");

  const voters = m.contract("VoterRegistry", [deployer]);
  const governor = m.contract("QuadraticGovernor", [
    token,
    timelock,
    voters,
    m.getParameter("votingDelay", 24 * 3600),
    m.getParameter("votingPeriod", 5 * 24 * 3600),
    m.getParameter("proposalThreshold", 10n ** 9n * 1_000n), // sqrt(1,000,000 X0T)
    m.getParameter("quorum", 10n ** 9n * 10_000n), // sqrt(100,000,000 X0T), or 100 voters of 10,000 X0T
  ]);

  // Timelock: the governor proposes and cancels; the deployer steps out last.
  const proposer = m.staticCall(timelock, "PROPOSER_ROLE");
  const canceller = m.staticCall(timelock, "CANCELLER_ROLE");
  const grantProposer = m.call(timelock, "grantRole", [proposer, governor], { id: "timelockProposer" });
  const grantCanceller = m.call(timelock, "grantRole", [canceller, governor], { id: "timelockCanceller" });

  // Voter registry: the council Safe and the timelock register voters; the timelock administers.
  const registrar = m.staticCall(voters, "REGISTRAR_ROLE");
  const adminRole = m.staticCall(voters, "DEFAULT_ADMIN_ROLE");
  const handovers = [
    m.call(voters, "grantRole", [registrar, safe], { id: "votersRegistrarSafe" }),
    m.call(voters, "grantRole", [registrar, timelock], { id: "votersRegistrarTimelock" }),
    m.call(voters, "grantRole", [adminRole, timelock], { id: "votersAdmin" }),
  ];
  m.call(voters, "renounceRole", [registrar, deployer], { id: "votersRenounceRegistrar", after: handovers });
  m.call(voters, "renounceRole", [adminRole, deployer], { id: "votersRenounceAdmin", after: handovers });

  // Every protocol contract: the timelock becomes admin, then the deployer renounces, after the
  // Protocol module's own wiring calls are done.
  for (const [name, contract] of Object.entries({ token, registry, credit, rewards })) {
    const grant = m.call(contract, "grantRole", [adminRole, timelock], { id: `${name}Admin`, after: [ProtocolModule] });
    m.call(contract, "renounceRole", [adminRole, deployer], { id: `${name}Renounce`, after: [grant] });
  }
  m.call(timelock, "renounceRole", [adminRole, deployer], {
    id: "timelockRenounce",
    after: [grantProposer, grantCanceller],
  });

  return { governor, voters, timelock, token, registry, credit, rewards };
});

import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

const X0T = 10n ** 18n;

/**
 * Deploys the token economy and wires it:
 * X0T, RelayerRegistry, BandwidthCredit, EpochRewards; EpochRewards gets X0T's MINTER_ROLE and
 * becomes BandwidthCredit's consumer; the registry and the credit contract are fee-exempt.
 *
 * `admin` must be the deployer while this module runs (it makes the wiring calls); the governance
 * module hands every admin role to the timelock afterwards.
 *
 * Genesis allocation (docs/economics.md): 300,000,000 X0T to the treasury, 100,000,000 X0T to the
 * distributor (sale, liquidity, testnet faucet); the remaining 600,000,000 of the cap is the reward
 * reserve, minted only by EpochRewards.
 */
export default buildModule("Protocol", (m) => {
  const admin = m.getAccount(0);
  // No default: a default of m.getAccount(1) is validated even when the parameter is given, and a
  // public deployment has one account (the deployer), so Ignition refused the whole run.
  const treasury = m.getParameter<string>("treasury");
  const distributor = m.getParameter("distributor", m.getAccount(0));

  const token = m.contract("X0T", [
    admin,
    [
      { recipient: treasury, amount: m.getParameter("treasuryGenesis", 300_000_000n * X0T) },
      { recipient: distributor, amount: m.getParameter("distributorGenesis", 100_000_000n * X0T) },
    ],
    m.getParameter("burnBps", 100),
  ]);

  const registry = m.contract("RelayerRegistry", [
    token,
    admin,
    m.getParameter("minStake", 10_000n * X0T),
    m.getParameter("unbondingDelay", 7 * 24 * 3600),
    treasury,
  ]);

  const credit = m.contract("BandwidthCredit", [token, admin, m.getParameter("pricePerGB", 1n * X0T), treasury]);

  const rewards = m.contract("EpochRewards", [
    token,
    credit,
    registry,
    admin,
    {
      rewardPerCell: m.getParameter("rewardPerCell", X0T / 10_000n),
      poolPerEpoch: m.getParameter("poolPerEpoch", 10_000n * X0T),
      relayShareBps: m.getParameter("relayShareBps", 9_000),
      uptimeBonusBps: m.getParameter("uptimeBonusBps", 1_000),
      treasuryShareBps: m.getParameter("treasuryShareBps", 100),
      minAttestations: m.getParameter("minAttestations", 3),
      submissionWindow: m.getParameter("submissionWindow", 1),
    },
    m.getParameter("epochLength", 3600),
  ]);

  const minterRole = m.staticCall(token, "MINTER_ROLE");
  m.call(token, "grantRole", [minterRole, rewards], { id: "grantMinter" });
  m.call(token, "setFeeExempt", [registry, true], { id: "exemptRegistry" });
  m.call(token, "setFeeExempt", [credit, true], { id: "exemptCredit" });
  m.call(credit, "setEpochRewards", [rewards]);

  return { token, registry, credit, rewards };
});

import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { zeroAddress } from "viem";
import SafeL2 from "@safe-global/safe-smart-account/build/artifacts/contracts/SafeL2.sol/SafeL2.json" with { type: "json" };
import SafeProxyFactory from "@safe-global/safe-smart-account/build/artifacts/contracts/proxies/SafeProxyFactory.sol/SafeProxyFactory.json" with { type: "json" };
import FallbackHandler from "@safe-global/safe-smart-account/build/artifacts/contracts/handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json" with { type: "json" };

/**
 * The governance timelock and the treasury Safe it controls (docs/governance.md).
 *
 * - TimelockController with `minDelay`; anyone may execute a ready operation; proposers are set by
 *   the Governance module (the QuadraticGovernor), which also renounces the deployer's admin role.
 * - A Safe 1.5 (SafeL2 singleton + proxy factory + fallback handler, from the audited artifacts of
 *   @safe-global/safe-smart-account; on a public chain pass the canonical addresses instead) with
 *   the council as owners and `threshold`, created with the TreasuryExecutor (called only by the
 *   timelock; reverts when the Safe's call fails) enabled as its only module and the CouncilGuard
 *   (allowlist: X0T transfers and ETH payments up to `payoutCap` / `ethCap` per `payoutPeriod`)
 *   installed in the same transaction (TreasurySetup). The Governance module tells the guard which
 *   token is X0T (the token is deployed after the Safe that receives its genesis allocation).
 *
 * - GenesisVesting: the distributor's genesis allocation vests linearly to `vestingBeneficiary`
 *   from `vestingStart` over `vestingDuration`; the vesting wallet cannot delegate, so those tokens
 *   carry no votes (scripts/deploy.ts passes it as Protocol.distributor on public chains).
 *
 * Deploy this first; its `safe` is the treasury parameter of the Protocol module, its `vesting`
 * the distributor, its `timelock` and `guard` parameters of the Governance module.
 *
 * `treasuryModule(canonical)` uses Safe's canonical deployments (from @safe-global/safe-deployments,
 * as scripts/deploy.ts does on Base Sepolia) instead of deploying the singleton, factory and handler.
 */
export interface CanonicalSafe {
  singleton: string;
  factory: string;
  handler: string;
}

export function treasuryModule(canonical?: CanonicalSafe) {
  return buildModule("Treasury", (m) => {
    const deployer = m.getAccount(0);
    const council = m.getParameter<string[]>("council"); // the owners' addresses; no default on purpose
    const threshold = m.getParameter("threshold", 2);

    const timelock = m.contract("TimelockController", [
      m.getParameter("minDelay", 2 * 24 * 3600),
      [],
      [zeroAddress],
      deployer,
    ]);
    const guard = m.contract("CouncilGuard", [
      timelock,
      m.getParameter("payoutCap", 500_000n * 10n ** 18n), // X0T per period
      m.getParameter("ethCap", 10n ** 18n), // 1 ETH per period, for gas money
      m.getParameter("payoutPeriod", 30 * 24 * 3600),
    ]);
    const executor = m.contract("TreasuryExecutor", [timelock]);
    const vesting = m.contract("GenesisVesting", [
      m.getParameter("vestingBeneficiary", deployer),
      m.getParameter("vestingStart", 0),
      m.getParameter("vestingDuration", 2 * 365 * 24 * 3600),
    ]);
    const setup = m.contract("TreasurySetup");

    const singleton = canonical ? m.contractAt("SafeL2", SafeL2, canonical.singleton) : m.contract("SafeL2", SafeL2);
    const factory = canonical
      ? m.contractAt("SafeProxyFactory", SafeProxyFactory, canonical.factory)
      : m.contract("SafeProxyFactory", SafeProxyFactory);
    const handler = canonical
      ? m.contractAt("CompatibilityFallbackHandler", FallbackHandler, canonical.handler)
      : m.contract("CompatibilityFallbackHandler", FallbackHandler);

    const setUpData = m.encodeFunctionCall(setup, "setUp", [executor, guard]);
    const initializer = m.encodeFunctionCall(singleton, "setup", [
      council,
      threshold,
      setup,
      setUpData,
      handler,
      zeroAddress,
      0,
      zeroAddress,
    ]);
    const create = m.call(factory, "createProxyWithNonce", [singleton, initializer, m.getParameter("saltNonce", 0)]);
    const safeAddress = m.readEventArgument(create, "ProxyCreation", "proxy");
    const safe = m.contractAt("SafeL2", SafeL2, safeAddress, { id: "Safe" });

    return { timelock, guard, executor, vesting, safe, singleton, factory, handler };
  });
}

export default treasuryModule();

/**
 * The Base Sepolia deployment path: the example parameters (Coinbase's EAS schema and attester,
 * quorum 2e13, the distributor's 100,000,000 X0T vesting in GenesisVesting) deployed by the
 * modules on the in-process chain with the real EAS at its predeploy; the quorum rule; and the
 * verify step that must fail loudly.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Address, zeroAddress } from "viem";
import { BASE_SEPOLIA_EAS, DEFAULT_QUORUM } from "../../deploy/ignition/modules/Governance.js";
import { readParameters } from "../../scripts/deploy-parameters.ts";
import { VerifyError, assertVerified } from "../../scripts/verify-deployment.ts";
import { connect } from "../helpers/protocol.ts";
import { X0T, deployGoverned, sqrt } from "./fixture.ts";

const example = readParameters("deploy/ignition/parameters/base-sepolia.example.json");

describe("Base Sepolia example parameters", () => {
  it("name Coinbase's Verified Account schema and attester on Base Sepolia, quorum 2e13 and no distributor", () => {
    const g = example.Governance!;
    assert.equal(g.eas, BASE_SEPOLIA_EAS.eas);
    assert.equal(g.easSchema, BASE_SEPOLIA_EAS.verifiedAccountSchema);
    assert.equal(g.easAttester, BASE_SEPOLIA_EAS.attester);
    assert.equal(g.quorum, DEFAULT_QUORUM);
    assert.equal(example.Protocol?.distributor, undefined, "the distributor's allocation vests");
  });

  it("the distributor's 100,000,000 X0T in GenesisVesting: 0 votes; half released after a year (49,500,000 after the 1% burn) is weight 7.04e12 < 2e13", async () => {
    const connection = await connect();
    const { viem, networkHelpers } = connection;
    const [deployer, , , , , , , , , beneficiary] = await viem.getWalletClients();
    const start = BigInt(await networkHelpers.time.latest());
    const year = 365n * 24n * 3600n;
    const vesting = await viem.deployContract("GenesisVesting", [beneficiary!.account.address, start, 2n * year]);
    const sys = await deployGoverned(connection, {
      quorum: example.Governance!.quorum as bigint,
      protocol: { distributor: vesting.address },
    });
    assert.equal(await sys.token.read.balanceOf([vesting.address]), 100_000_000n * X0T);
    assert.equal(await sys.token.read.getVotes([vesting.address]), 0n, "a vesting wallet never delegates");
    assert.equal(await sys.token.read.delegates([vesting.address]), zeroAddress);
    assert.equal(await sys.token.read.balanceOf([deployer!.account.address]), 0n, "the deployer holds nothing");
    await networkHelpers.time.increaseTo(start + year);
    await vesting.write.release([sys.token.address]);
    const released = await sys.token.read.balanceOf([beneficiary!.account.address]);
    assert.ok(released >= 49_500_000n * X0T && released < 49_501_000n * X0T, `${released}`);
    await sys.token.write.delegate([beneficiary!.account.address], { account: beneficiary!.account });
    await sys.registerHuman(beneficiary!);
    await networkHelpers.mine(1);
    const now = BigInt(await networkHelpers.time.latest());
    const weight = await sys.governor.read.getVotes([beneficiary!.account.address as Address, now - 1n]);
    assert.equal(weight, sqrt(released));
    assert.ok(weight < DEFAULT_QUORUM);
    assert.equal(weight / 10n ** 10n, 703n, "7.04e12");
  });
});

describe("verify step", () => {
  it("fails loudly on 'not supported' with exit 0, on a non-zero exit, and passes a clean run", () => {
    // What `ignition verify chain-84532` printed without --network: chain 31337, exit 0.
    assert.throws(
      () => assertVerified(0, "Verification not supported for chain 31337\n", "chain-84532", "baseSepolia"),
      (e: unknown) => e instanceof VerifyError && /not supported/.test(e.message),
    );
    assert.throws(() => assertVerified(1, "", "chain-84532", "baseSepolia"), /exit 1/);
    assert.throws(() => assertVerified(0, "Error: Invalid API Key", "chain-84532", "baseSepolia"), VerifyError);
    assertVerified(0, "Verifying contract X0T… Successfully verified contract X0T on the block explorer.\n", "c", "n");
  });
});

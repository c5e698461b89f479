/**
 * The attacks of issue 10, each tried against the governed system as deployed by the Ignition
 * modules with Base Sepolia's numbers: genesis 300,000,000 X0T to the treasury Safe and
 * 100,000,000 to the distributor, quorum 2e13 (DEFAULT_QUORUM), voting delay 1 day, voting period
 * 5 days, timelock 2 days, unbonding 7 days, council 2 of 3 with a 500,000 X0T cap per 30 days.
 * Each test now fails for the attacker; the numbers are in the names.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { type Address, encodeFunctionData, keccak256, parseEther, stringToHex, zeroAddress } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { relayerRegistryDomain, signSignerConsent } from "@x0tta6bl4/relayer/chain/registry";
import { DEFAULT_QUORUM, assertQuorumAboveAllocations } from "../../deploy/ignition/modules/Governance.js";
import { connect, keysHashOf, region } from "../helpers/protocol.ts";
import {
  State,
  UNIT,
  Vote,
  X0T,
  attest,
  deployGoverned,
  execSafeTransaction,
  governance,
  reverts,
  revoke,
  safeAbi,
  safeCall,
  sqrt,
} from "./fixture.ts";

const DAY = 24 * 3600;
const connection = await connect();
const { viem, networkHelpers, provider } = connection;
const sys = await deployGoverned(connection, {
  quorum: DEFAULT_QUORUM,
  minDelay: 2 * DAY,
  protocol: { unbondingDelay: 7 * DAY },
  governance: { votingDelay: DAY, votingPeriod: 5 * DAY },
});
const { propose, fund, passAndQueue, state } = governance(connection, sys);
const publicClient = await viem.getPublicClient();
const [deployer, c1] = sys.wallets;
const voters = sys.wallets.slice(4, 9);
const [alice, , , , , relayer, outsider] = sys.wallets.slice(4);
if (!deployer || !c1 || !alice || !relayer || !outsider || voters.length !== 5) throw new Error("need 11 accounts");
const council2of3 = sys.council.slice(0, 2);
const priceCall = (gb: bigint) =>
  encodeFunctionData({ abi: sys.credit.abi, functionName: "setPricePerGB", args: [gb * X0T] });

describe("a quorum no single genesis holder meets", () => {
  it("the distributor's 100,000,000 X0T (weight 1.0e13) voting alone stays below the 2.0e13 quorum: defeated", async () => {
    assert.equal(await sys.token.read.balanceOf([sys.safeAddress]), 300_000_000n * X0T);
    await sys.registerHuman(deployer!);
    await sys.token.write.delegate([deployer!.account.address]);
    await networkHelpers.mine(1);
    const p = await propose([sys.credit.address], [priceCall(7n)], "deployer alone", deployer!);
    await networkHelpers.time.increase(DAY + 1);
    await sys.governor.write.castVote([p.id, Vote.for]);
    const [, forVotes] = await sys.governor.read.proposalVotes([p.id]);
    assert.equal(forVotes, 10_000n * UNIT, "sqrt(100,000,000 X0T) = 1e13");
    await networkHelpers.time.increase(5 * DAY);
    assert.equal(await state(p), State.defeated);
  });

  it("the deploy-time rule: no allocation reaches the quorum (largest: treasury 300M, weight 1.73e13 < 2e13)", () => {
    const allocations = { treasury: 300_000_000n * X0T, distributor: 100_000_000n * X0T };
    assert.equal(assertQuorumAboveAllocations(DEFAULT_QUORUM, allocations), sqrt(300_000_000n * X0T));
    // The quorum, 1e13, was met by the deployer's 100M alone.
    assert.throws(() => assertQuorumAboveAllocations(10_000n * UNIT, allocations), /"treasury" alone/);
  });
});

describe("the council cannot take over the DAO (attack 1)", () => {
  before(async () => {
    // Five registered holders of 19,701,000 X0T each (19.9M less the 1% burn): 5 x 4.44e12 = 2.22e13
    // >= the quorum. The deployer keeps 500,000 X0T.
    for (const v of voters) {
      await fund(v, 19_900_000n * X0T);
      await sys.registerHuman(v);
    }
    await networkHelpers.mine(1);
  });

  it("council with 2-of-3 signatures and the treasury's 300,000,000 X0T: register, delegate and propose all impossible", async () => {
    // Even with a genuine attestation made out to the Safe, the Safe cannot register: the guard
    // refuses the call, and the registry excludes the Safe for good.
    const uid = await attest(connection, sys.attester, sys.safeAddress, { schema: sys.schema });
    const register = encodeFunctionData({
      abi: sys.voters.abi,
      functionName: "register",
      args: [sys.personhood.address, uid],
    });
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, council2of3, { to: sys.voters.address, data: register }),
      "CallNotAllowed",
    );
    await provider.request({ method: "hardhat_impersonateAccount", params: [sys.safeAddress] });
    await networkHelpers.setBalance(sys.safeAddress, parseEther("1"));
    await reverts(
      sys.voters.write.register([sys.personhood.address, uid], { account: sys.safeAddress }),
      "ExcludedAccount",
    );
    await provider.request({ method: "hardhat_stopImpersonatingAccount", params: [sys.safeAddress] });
    // Delegating the treasury's 300M to the Safe or to a member: refused.
    for (const to of [sys.safeAddress, c1!.account.address]) {
      const delegate = encodeFunctionData({ abi: sys.token.abi, functionName: "delegate", args: [to] });
      await reverts(
        execSafeTransaction(connection, sys.safeAddress, council2of3, { to: sys.token.address, data: delegate }),
        "CallNotAllowed",
      );
    }
    assert.equal(await sys.token.read.getVotes([sys.safeAddress]), 0n);
    // Granting MINTER_ROLE or removing the guard: refused.
    const grant = encodeFunctionData({
      abi: sys.token.abi,
      functionName: "grantRole",
      args: [await sys.token.read.MINTER_ROLE(), c1!.account.address],
    });
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, council2of3, { to: sys.token.address, data: grant }),
      "CallNotAllowed",
    );
    const unguard = encodeFunctionData({ abi: safeAbi, functionName: "setGuard", args: [zeroAddress] });
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, council2of3, { to: sys.safeAddress, data: unguard }),
      "CallNotAllowed",
    );
    // A member with no registered weight cannot even propose.
    await reverts(propose([sys.credit.address], [priceCall(9n)], "council", c1!), "GovernorInsufficientProposerVotes");
  });
});

describe("the council cannot empty the treasury without a vote (attack 2)", () => {
  it("300,000,000 X0T to a member refused, also as a gas refund; at most 500,000 X0T per 30 days (6,000,000 a year, 2% of the treasury)", async () => {
    const pay = (amount: bigint) =>
      execSafeTransaction(connection, sys.safeAddress, council2of3, {
        to: sys.token.address,
        data: encodeFunctionData({ abi: sys.token.abi, functionName: "transfer", args: [c1!.account.address, amount] }),
      });
    await reverts(pay(300_000_000n * X0T), "CapExceeded");
    // Nor as a "gas refund": 1 ETH-worth of gas price in X0T on 100,000 base gas would pay the member
    // 100,000 x 1e18 wei = 100,000 X0T per transaction, outside the cap.
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, council2of3, {
        to: c1!.account.address,
        data: "0x",
        refund: { gasPrice: 10n ** 18n, gasToken: sys.token.address, receiver: c1!.account.address },
      }),
      "GasRefundRefused",
    );
    await pay(500_000n * X0T);
    await reverts(pay(1n), "CapExceeded");
    await networkHelpers.time.increase(30 * DAY);
    await pay(500_000n * X0T);
    const received = await sys.token.read.balanceOf([c1!.account.address]);
    assert.equal(received, 990_000n * X0T, "two periods' caps, less the 1% burn");
  });
});

describe("nobody forges or censors the electorate (attack 4)", () => {
  it("a council member's self-issued attestation under the same schema is refused; one attestation = one voter", async () => {
    const forged = await attest(connection, c1!, c1!.account.address, { schema: sys.schema });
    await reverts(
      sys.voters.write.register([sys.personhood.address, forged], { account: c1!.account }),
      "WrongAttester",
    );
    const { uid } = { uid: (await sys.voters.read.voterOf([alice!.account.address]))[1] };
    await reverts(sys.voters.write.register([sys.personhood.address, uid], { account: c1!.account }), "WrongRecipient");
    assert.equal(await sys.voters.read.isRegistered([c1!.account.address]), false);
  });

  it("removing an opponent during the 1-day voting delay is impossible; a revocation after the snapshot does not cancel a cast vote of weight 4.44e12", async () => {
    const p = await propose([sys.credit.address], [priceCall(3n)], "censorship", alice!);
    // Nobody can prune a voter whose attestation holds.
    await reverts(sys.voters.write.prune([alice!.account.address], { account: c1!.account }), "StillValid");
    await networkHelpers.time.increase(DAY + 1);
    // The attester revokes after the snapshot; the voter is pruned; its vote still counts.
    const [, uid] = await sys.voters.read.voterOf([alice!.account.address]);
    await revoke(connection, sys.attester, sys.schema, uid);
    await sys.voters.write.prune([alice!.account.address], { account: c1!.account });
    await sys.governor.write.castVote([p.id, Vote.against], { account: alice!.account });
    const [against] = await sys.governor.read.proposalVotes([p.id]);
    assert.equal(against, sqrt(19_701_000n * X0T));
    assert.equal(against / 10n ** 10n, 443n, "4.44e12");
    // Alice registers again with a new attestation (a revoked uid cannot come back).
    await reverts(sys.voters.write.register([sys.personhood.address, uid], { account: alice!.account }), "Revoked");
    await sys.registerHuman(alice!);
  });
});

describe("a DAO payout that fails is not marked Executed (attack 6)", () => {
  it("paying 400,000,000 X0T from a Safe holding 299,000,000: execute reverts SafeCallFailed and the proposal stays Queued", async () => {
    await networkHelpers.mine(1);
    const transfer = encodeFunctionData({
      abi: sys.token.abi,
      functionName: "transfer",
      args: [outsider!.account.address, 400_000_000n * X0T],
    });
    const call = safeCall(sys.executor.address, sys.safeAddress, sys.token.address, transfer);
    const p = await propose([call.target], [call.calldata], "too big a payout", alice!);
    await passAndQueue(p, voters);
    await reverts(sys.governor.write.execute([...p.args]), "SafeCallFailed");
    assert.equal(await state(p), State.queued);
    assert.equal(await sys.token.read.balanceOf([outsider!.account.address]), 0n);
  });
});

describe("a guardian that can only veto (attack 7)", () => {
  it("vetoes an active and a queued proposal; cannot propose or execute; its 30-day sunset ends the veto until the DAO extends it", async () => {
    const guardian = sys.guardian;
    // The sunset was 30 days after deployment, and more than 30 days have passed: extend by proposal.
    const a = await propose([sys.credit.address], [priceCall(4n)], "active", alice!);
    await networkHelpers.time.increase(DAY + 1);
    await reverts(sys.governor.write.veto([...a.args], { account: guardian.account }), "NotGuardian");
    const now = BigInt(await networkHelpers.time.latest());
    const extend = encodeFunctionData({
      abi: sys.governor.abi,
      functionName: "setGuardian",
      args: [guardian.account.address, Number(now + 200n * BigInt(DAY))],
    });
    const tooLong = encodeFunctionData({
      abi: sys.governor.abi,
      functionName: "setGuardian",
      args: [guardian.account.address, Number(now + 400n * BigInt(DAY))],
    });
    const e = await propose([sys.governor.address], [extend], "extend the guardian 200 days", alice!);
    const t = await propose([sys.governor.address], [tooLong], "extend the guardian 400 days", alice!);
    await networkHelpers.time.increase(DAY + 1);
    for (const v of voters) {
      await sys.governor.write.castVote([e.id, Vote.for], { account: v.account });
      await sys.governor.write.castVote([t.id, Vote.for], { account: v.account });
    }
    await networkHelpers.time.increase(5 * DAY);
    await sys.governor.write.queue([...e.args]);
    await sys.governor.write.queue([...t.args]);
    await networkHelpers.time.increase(2 * DAY);
    await sys.governor.write.execute([...e.args]);
    await reverts(sys.governor.write.execute([...t.args]), "GuardianTermTooLong");
    // Active: vetoed.
    const b = await propose([sys.credit.address], [priceCall(5n)], "to veto while active", alice!);
    await networkHelpers.time.increase(DAY + 1);
    assert.equal(await state(b), State.active);
    await sys.governor.write.veto([...b.args], { account: guardian.account });
    assert.equal(await state(b), State.canceled);
    // Queued: vetoed, and the timelock operation is gone.
    const q = await propose([sys.credit.address], [priceCall(6n)], "to veto while queued", alice!);
    await passAndQueue(q, voters);
    assert.equal(await state(q), State.queued);
    await sys.governor.write.veto([...q.args], { account: guardian.account });
    await reverts(sys.governor.write.execute([...q.args]), "GovernorUnexpectedProposalState");
    // The guardian has no weight: it cannot propose; others cannot veto.
    await reverts(
      propose([sys.credit.address], [priceCall(8n)], "guardian proposes", guardian),
      "GovernorInsufficientProposerVotes",
    );
    await reverts(sys.governor.write.veto([...q.args], { account: alice!.account }), "NotGuardian");
    await reverts(sys.governor.write.setGuardian([alice!.account.address, 0]), "GovernorOnlyExecutor");
  });
});

describe("a relayer cannot escape its slash (attack 5)", () => {
  const registerAndUnbond = async (operator: (typeof sys.wallets)[number], label: string, stake: bigint) => {
    await sys.token.write.transfer([operator.account.address, stake + 100n * X0T]);
    await sys.token.write.approve([sys.registry.address, stake], { account: operator.account });
    const signer = privateKeyToAccount(generatePrivateKey());
    const domain = relayerRegistryDomain(await publicClient.getChainId(), sys.registry.address);
    const consent = await signSignerConsent(signer, domain, operator.account.address);
    await sys.registry.write.register(
      [`relay-${label}.test:9001`, region("DE"), keysHashOf(label), signer.address, consent, stake],
      { account: operator.account },
    );
    await sys.registry.write.unbond([stake], { account: operator.account });
  };
  const slashCall = (who: Address, amount: bigint) =>
    encodeFunctionData({
      abi: sys.registry.abi,
      functionName: "slash",
      args: [who, amount, keccak256(stringToHex("double signing"))],
    });

  it("unbonding 7 days vs a 1 + 5 + 2-day slash: proposing the slash freezes the withdrawal in the same transaction, until vote + timelock + 7 days; 1,000 X0T slashed", async () => {
    const stake = 1_000n * X0T;
    assert.equal((await sys.registry.read.slashGovernor()).toLowerCase(), sys.governor.address.toLowerCase());
    assert.equal((await sys.governor.read.slashRegistry()).toLowerCase(), sys.registry.address.toLowerCase());
    // The relayer sees the slash coming and unbonds everything first.
    await registerAndUnbond(relayer!, "escape", stake);
    const who = relayer!.account.address;
    // Six and a half days later (half a day before its release) the DAO proposes the slash: the
    // freeze is set by the proposing transaction itself, so no withdrawal can slip in, not even
    // while the proposal is Pending.
    await networkHelpers.time.increase(6 * DAY + DAY / 2);
    const p = await propose([sys.registry.address], [slashCall(who, stake)], "slash the relayer", alice!);
    const deadline = await sys.governor.read.proposalDeadline([p.id]);
    const until = deadline + (await sys.timelock.read.getMinDelay()) + 7n * BigInt(DAY);
    assert.equal(BigInt(await sys.registry.read.frozenUntil([who])), until);
    await networkHelpers.time.increase(DAY + 1);
    assert.equal(await state(p), State.active);
    await reverts(sys.registry.write.withdraw({ account: relayer!.account }), "WithdrawalsFrozenUntil");
    for (const v of voters) await sys.governor.write.castVote([p.id, Vote.for], { account: v.account });
    await networkHelpers.time.increaseTo(deadline + 1n);
    await sys.governor.write.queue([...p.args]);
    await networkHelpers.time.increase(Number(await sys.timelock.read.getMinDelay()) + 3 * DAY); // executed late
    await reverts(sys.registry.write.withdraw({ account: relayer!.account }), "WithdrawalsFrozenUntil");
    await sys.governor.write.execute([...p.args]);
    await reverts(sys.registry.write.withdraw({ account: relayer!.account }), "NothingToWithdraw");
    // Nobody but the slash governor sets a freeze.
    await reverts(sys.registry.write.freezeForSlash([who, p.id, 1]), "OnlySlashGovernor");
  });

  it("decoy slashes by a proposer cannot lift a freeze, a freeze never reaches past 30 days, and the DAO can lift one that harasses", async () => {
    const stake = 1_000n * X0T;
    await registerAndUnbond(outsider!, "decoys", stake);
    const who = outsider!.account.address;
    // Eight 1-wei decoys and the real slash: every proposal only ever extends the freeze.
    const decoys = [];
    for (let i = 0; i < 8; i++)
      decoys.push(await propose([sys.registry.address], [slashCall(who, 1n)], `decoy ${i}`, alice!));
    const real = await propose([sys.registry.address], [slashCall(who, stake)], "the real slash", alice!);
    const frozen = BigInt(await sys.registry.read.frozenUntil([who]));
    for (const d of decoys) await sys.governor.write.cancel([...d.args], { account: alice!.account });
    assert.equal(BigInt(await sys.registry.read.frozenUntil([who])), frozen, "cancelling decoys lifts nothing");
    assert.equal(await state(real), State.pending);
    // A slash that is never executed cannot hold the stake past its freeze.
    await networkHelpers.time.increaseTo(frozen);
    const before = await sys.token.read.balanceOf([who]);
    await sys.registry.write.withdraw({ account: outsider!.account });
    assert.equal((await sys.token.read.balanceOf([who])) - before, stake);
    // Harassment: a freeze the DAO judges abusive is lifted by governance.
    await registerAndUnbond(c1!, "harassed", stake);
    await propose([sys.registry.address], [slashCall(c1!.account.address, 1n)], "harass", alice!);
    assert.ok((await sys.registry.read.frozenUntil([c1!.account.address])) > 0);
    const lift = encodeFunctionData({ abi: sys.registry.abi, functionName: "unfreeze", args: [c1!.account.address] });
    const p = await propose([sys.registry.address], [lift], "lift the harassing freeze", alice!);
    await passAndQueue(p, voters);
    await sys.governor.write.execute([...p.args]);
    assert.equal(await sys.registry.read.frozenUntil([c1!.account.address]), 0);
    // A governor at most asks for 30 days.
    const bare = await viem.deployContract("RelayerRegistry", [
      sys.token.address,
      deployer!.account.address,
      stake,
      7 * DAY,
      sys.safeAddress,
    ]);
    await bare.write.setSlashGovernor([deployer!.account.address]);
    const now = BigInt(await networkHelpers.time.latest());
    await bare.write.freezeForSlash([who, 1n, Number(now + 365n * BigInt(DAY))]);
    assert.equal(BigInt(await bare.read.frozenUntil([who])), now + 1n + 30n * BigInt(DAY));
  });
});

describe("the deployer holds nothing", () => {
  it("no admin role on any contract, no registrar, the guard's token already set", async () => {
    const admin = await sys.token.read.DEFAULT_ADMIN_ROLE();
    for (const c of [sys.token, sys.registry, sys.credit, sys.rewards, sys.voters, sys.timelock] as const)
      assert.equal(await c.read.hasRole([admin, deployer!.account.address]), false, c.address);
    await reverts(sys.guard.write.setToken([outsider!.account.address]), "TokenAlreadySet");
    const excluded = [sys.safeAddress, sys.timelock.address, sys.governor.address, sys.token.address] as Address[];
    for (const a of excluded) assert.equal(await sys.voters.read.isExcluded([a]), true, a);
  });
});

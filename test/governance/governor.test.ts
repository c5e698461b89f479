import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Address,
  type Hex,
  encodeFunctionData,
  keccak256,
  parseEventLogs,
  stringToHex,
  toHex,
  zeroAddress,
} from "viem";
import { connect } from "../helpers/protocol.ts";
import {
  MIN_DELAY,
  QUORUM,
  UNIT,
  VOTING_DELAY,
  VOTING_PERIOD,
  X0T,
  deployGoverned,
  execSafeTransaction,
  safeAbi,
} from "./fixture.ts";

const connection = await connect();
const { viem, networkHelpers } = connection;
const sys = await deployGoverned(connection);
const publicClient = await viem.getPublicClient();
const [, , , , alice, bob, carol, whale, outsider] = sys.wallets;
if (!alice || !bob || !carol || !whale || !outsider) throw new Error("need 9 accounts");

const Vote = { against: 0, for: 1, abstain: 2 } as const;
const State = {
  pending: 0,
  active: 1,
  canceled: 2,
  defeated: 3,
  succeeded: 4,
  queued: 5,
  expired: 6,
  executed: 7,
} as const;

/** Gives `to` tokens from the distributor (the deployer) and self-delegates; returns its votes. */
async function fund(to: (typeof sys.wallets)[number], amount: bigint): Promise<bigint> {
  await sys.token.write.transfer([to.account.address, amount]);
  await sys.token.write.delegate([to.account.address], { account: to.account });
  return sys.token.read.getVotes([to.account.address]);
}

async function register(voter: Address) {
  const data = encodeFunctionData({
    abi: sys.voters.abi,
    functionName: "register",
    args: [voter, keccak256(stringToHex(`kyc:${voter}`))],
  });
  await execSafeTransaction(connection, sys.safeAddress, sys.council.slice(0, 2), { to: sys.voters.address, data });
}

async function propose(targets: Address[], calldatas: Hex[], description: string, by = alice!) {
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
    gas: receipt.gasUsed,
  };
}

type Proposal = Awaited<ReturnType<typeof propose>>;

/** Alice and Bob vote for `p` (together above quorum); it is queued and its timelock delay passes. */
async function passAndQueue(p: Proposal): Promise<void> {
  await networkHelpers.time.increase(VOTING_DELAY + 1);
  await sys.governor.write.castVote([p.id, Vote.for], { account: alice!.account });
  await sys.governor.write.castVote([p.id, Vote.for], { account: bob!.account });
  await networkHelpers.time.increase(VOTING_PERIOD);
  await sys.governor.write.queue([p.targets, p.values, p.calldatas, p.descriptionHash]);
  await networkHelpers.time.increase(MIN_DELAY);
}

async function execute(p: Proposal): Promise<void> {
  await sys.governor.write.execute([p.targets, p.values, p.calldatas, p.descriptionHash]);
}

const gas: Record<string, bigint> = {};

/** Asserts that `action` reverts with the custom error (or require code) `name`. */
async function reverts(action: Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(action, (error: unknown) => String(error).includes(name));
}
const sqrt = (n: bigint) => {
  let x = n;
  let y = (x + 1n) / 2n;
  while (y < x) [x, y] = [y, (y + n / y) / 2n];
  return x;
};

const votes = {
  alice: await fund(alice, 1_000_000n * X0T),
  bob: await fund(bob, 250_000n * X0T),
  carol: await fund(carol, 40_000n * X0T),
};
for (const w of [alice, bob, carol]) await register(w.account.address);
await networkHelpers.mine(1);

describe("roles after deployment", () => {
  it("leaves every admin role with the timelock and none with the deployer", async () => {
    const admin = await sys.token.read.DEFAULT_ADMIN_ROLE();
    for (const c of [sys.token, sys.registry, sys.credit, sys.rewards, sys.voters] as const) {
      assert.equal(await c.read.hasRole([admin, sys.timelock.address]), true, c.address);
      assert.equal(await c.read.hasRole([admin, sys.deployer.account.address]), false, c.address);
    }
    assert.equal(await sys.timelock.read.hasRole([admin, sys.deployer.account.address]), false);
    assert.equal(
      await sys.timelock.read.hasRole([await sys.timelock.read.PROPOSER_ROLE(), sys.governor.address]),
      true,
    );
    assert.equal(await sys.token.read.balanceOf([sys.safeAddress]), 300_000_000n * X0T);
    const modules = (await publicClient.readContract({
      address: sys.safeAddress,
      abi: safeAbi,
      functionName: "isModuleEnabled",
      args: [sys.timelock.address],
    })) as boolean;
    assert.equal(modules, true);
  });
});

describe("a proposal's whole life: delegate, propose, vote with sqrt weights, queue, execute", () => {
  it("changes the price per GB through the timelock", async () => {
    const newPrice = 2n * X0T;
    const p = await propose(
      [sys.credit.address],
      [encodeFunctionData({ abi: sys.credit.abi, functionName: "setPricePerGB", args: [newPrice] })],
      "Price 2 X0T/GB",
    );
    gas.propose = p.gas;
    assert.equal(await sys.governor.read.state([p.id]), State.pending);
    await networkHelpers.time.increase(VOTING_DELAY + 1);
    const cast = async (w: typeof alice, support: number) => {
      const hash = await sys.governor.write.castVote([p.id, support], { account: w!.account });
      return (await publicClient.waitForTransactionReceipt({ hash })).gasUsed;
    };
    gas.castVote = await cast(alice, Vote.for);
    await cast(bob, Vote.against);
    await cast(carol, Vote.abstain);
    const [against, forVotes, abstain] = await sys.governor.read.proposalVotes([p.id]);
    assert.equal(forVotes, sqrt(votes.alice));
    assert.equal(against, sqrt(votes.bob));
    assert.equal(abstain, sqrt(votes.carol));
    assert.equal(forVotes / UNIT, 994n, "sqrt(990,000 X0T after the 1% burn) = 994.98… x 1e9");

    await reverts(
      sys.governor.write.castVote([p.id, Vote.for], { account: alice!.account }),
      "GovernorAlreadyCastVote",
    );
    await networkHelpers.time.increase(VOTING_PERIOD);
    assert.equal(await sys.governor.read.state([p.id]), State.succeeded);

    let hash = await sys.governor.write.queue([p.targets, p.values, p.calldatas, p.descriptionHash]);
    gas.queue = (await publicClient.waitForTransactionReceipt({ hash })).gasUsed;
    await reverts(
      sys.governor.write.execute([p.targets, p.values, p.calldatas, p.descriptionHash]),
      "TimelockUnexpectedOperationState",
    );
    await networkHelpers.time.increase(MIN_DELAY);
    hash = await sys.governor.write.execute([p.targets, p.values, p.calldatas, p.descriptionHash], {
      account: outsider!.account,
    });
    gas.execute = (await publicClient.waitForTransactionReceipt({ hash })).gasUsed;
    assert.equal(await sys.credit.read.pricePerGB(), newPrice);
    assert.equal(await sys.governor.read.state([p.id]), State.executed);
  });

  it("pays from the Safe treasury through the timelock module, with no council signature", async () => {
    const amount = 50_000n * X0T;
    const transfer = encodeFunctionData({
      abi: sys.token.abi,
      functionName: "transfer",
      args: [outsider!.account.address, amount],
    });
    const call = encodeFunctionData({
      abi: safeAbi,
      functionName: "execTransactionFromModule",
      args: [sys.token.address, 0n, transfer, 0],
    });
    const p = await propose([sys.safeAddress], [call], "Grant 50,000 X0T");
    await passAndQueue(p);
    const before = await sys.token.read.balanceOf([outsider!.account.address]);
    await execute(p);
    const fee = (amount * BigInt(await sys.token.read.burnBps())) / 10_000n;
    assert.equal((await sys.token.read.balanceOf([outsider!.account.address])) - before, amount - fee);
  });

  it("defeats a proposal below quorum even when every vote is for", async () => {
    assert.ok(sqrt(votes.carol) < QUORUM);
    const p = await propose(
      [sys.credit.address],
      [encodeFunctionData({ abi: sys.credit.abi, functionName: "setPricePerGB", args: [3n * X0T] })],
      "Price 3 X0T/GB",
    );
    await networkHelpers.time.increase(VOTING_DELAY + 1);
    await sys.governor.write.castVote([p.id, Vote.for], { account: carol!.account });
    await networkHelpers.time.increase(VOTING_PERIOD);
    assert.equal(await sys.governor.read.state([p.id]), State.defeated);
    await reverts(
      sys.governor.write.queue([p.targets, p.values, p.calldatas, p.descriptionHash]),
      "GovernorUnexpectedProposalState",
    );
  });

  it("changes the quorum by proposal, and lets a proposer cancel before voting starts", async () => {
    const newQuorum = 1_000n * UNIT;
    const p = await propose(
      [sys.governor.address],
      [encodeFunctionData({ abi: sys.governor.abi, functionName: "setQuorum", args: [newQuorum] })],
      "Quorum 1000e9",
    );
    await passAndQueue(p);
    await execute(p);
    assert.equal(await sys.governor.read.quorum([0n]), newQuorum);

    const c = await propose(
      [sys.credit.address],
      [encodeFunctionData({ abi: sys.credit.abi, functionName: "setPricePerGB", args: [9n * X0T] })],
      "To be cancelled",
    );
    await sys.governor.write.cancel([c.targets, c.values, c.calldatas, c.descriptionHash], { account: alice!.account });
    assert.equal(await sys.governor.read.state([c.id]), State.canceled);
  });

  it("refuses a proposer below the threshold and an unregistered one", async () => {
    await fund(outsider!, 5_000_000n * X0T);
    await networkHelpers.mine(1);
    await reverts(propose([sys.credit.address], ["0x"], "outsider", outsider!), "GovernorInsufficientProposerVotes");
  });
});

describe("the council cannot administer the Safe alone", () => {
  it("refuses a council-signed addOwner, threshold change, module change and delegatecall", async () => {
    const selfCalls: Hex[] = [
      encodeFunctionData({
        abi: safeAbi,
        functionName: "addOwnerWithThreshold",
        args: [outsider!.account.address, 1n],
      }),
      encodeFunctionData({ abi: safeAbi, functionName: "changeThreshold", args: [1n] }),
      encodeFunctionData({
        abi: safeAbi,
        functionName: "disableModule",
        args: ["0x0000000000000000000000000000000000000001", sys.timelock.address],
      }),
      encodeFunctionData({ abi: safeAbi, functionName: "setGuard", args: [zeroAddress] }),
    ];
    for (const data of selfCalls) {
      await reverts(
        execSafeTransaction(connection, sys.safeAddress, sys.council, { to: sys.safeAddress, data }),
        "SelfAdministrationRefused",
      );
    }
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, sys.council, {
        to: sys.token.address,
        data: "0x",
        operation: 1,
      }),
      "DelegateCallRefused",
    );
    const owners = (await publicClient.readContract({
      address: sys.safeAddress,
      abi: safeAbi,
      functionName: "getOwners",
    })) as Address[];
    assert.equal(owners.length, 3);
  });

  it("lets the council move funds it signed for, with the threshold", async () => {
    const data = encodeFunctionData({
      abi: sys.token.abi,
      functionName: "transfer",
      args: [carol!.account.address, 10n * X0T],
    });
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, sys.council.slice(0, 1), { to: sys.token.address, data }),
      "GS020",
    );
    const receipt = await execSafeTransaction(connection, sys.safeAddress, sys.council.slice(1, 3), {
      to: sys.token.address,
      data,
    });
    assert.equal(receipt.status, "success");
  });

  it("lets the timelock add an owner by proposal (module transaction, guard not involved)", async () => {
    const add = encodeFunctionData({
      abi: safeAbi,
      functionName: "addOwnerWithThreshold",
      args: [outsider!.account.address, 2n],
    });
    const call = encodeFunctionData({
      abi: safeAbi,
      functionName: "execTransactionFromModule",
      args: [sys.safeAddress, 0n, add, 0],
    });
    const p = await propose([sys.safeAddress], [call], "Add an owner");
    await passAndQueue(p);
    await execute(p);
    const owners = (await publicClient.readContract({
      address: sys.safeAddress,
      abi: safeAbi,
      functionName: "getOwners",
    })) as Address[];
    assert.equal(owners.length, 4);
  });
});

describe("Sybil resistance", () => {
  it("a whale splitting its tokens across 100 fresh addresses gains nothing", async () => {
    const total = 10_000_000n * X0T;
    const whaleVotes = await fund(whale!, total);
    await register(whale!.account.address);
    // The whale keeps a share and spreads the rest over 100 addresses it controls.
    const keep = whaleVotes / 101n;
    const sybils = Array.from({ length: 100 }, (_, i) => toHex(BigInt(0x5b11_0000 + i), { size: 20 }) as Address);
    await networkHelpers.mine(1);
    const p = await propose(
      [sys.credit.address],
      [encodeFunctionData({ abi: sys.credit.abi, functionName: "setPricePerGB", args: [5n * X0T] })],
      "Sybil test",
    );
    const snapshot = await sys.governor.read.proposalSnapshot([p.id]);
    await networkHelpers.time.increase(VOTING_DELAY + 1);
    // Unregistered addresses have no weight, whatever they hold at the snapshot.
    for (const s of sybils.slice(0, 3)) assert.equal(await sys.governor.read.getVotes([s, snapshot]), 0n);
    const whole = await sys.governor.read.getVotes([whale!.account.address, snapshot]);
    assert.equal(whole, sqrt(whaleVotes));
    // Counterfactual without the registry: 101 parts of sqrt(total/101) each = sqrt(101) ≈ 10x.
    const split = 101n * sqrt(keep);
    assert.ok(split > 10n * whole, "quadratic voting without identity rewards splitting ~10x");
    // With the registry the whale's best is to keep everything in its one registered address.
    assert.equal(whole > sqrt(keep), true);
    // Registering after the snapshot does not count for that proposal.
    await register(outsider!.account.address);
    assert.equal(await sys.governor.read.getVotes([outsider!.account.address, snapshot]), 0n);
  });
});

describe("voter registry", () => {
  it("only registrars register; double registration and unknown removal revert; removal stops weight", async () => {
    await reverts(
      sys.voters.write.register([carol!.account.address, ("0x" + "00".repeat(32)) as Hex], { account: carol!.account }),
      "AccessControlUnauthorizedAccount",
    );
    const again = encodeFunctionData({
      abi: sys.voters.abi,
      functionName: "register",
      args: [carol!.account.address, keccak256("0x01")],
    });
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, sys.council.slice(0, 2), {
        to: sys.voters.address,
        data: again,
      }),
      "AlreadyRegistered",
    );
    const removeUnknown = encodeFunctionData({
      abi: sys.voters.abi,
      functionName: "remove",
      args: [zeroAddress, keccak256("0x02")],
    });
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, sys.council.slice(0, 2), {
        to: sys.voters.address,
        data: removeUnknown,
      }),
      "NotRegistered",
    );
    const remove = encodeFunctionData({
      abi: sys.voters.abi,
      functionName: "remove",
      args: [carol!.account.address, keccak256("0x03")],
    });
    await execSafeTransaction(connection, sys.safeAddress, sys.council.slice(0, 2), {
      to: sys.voters.address,
      data: remove,
    });
    await networkHelpers.mine(1);
    const now = BigInt(await networkHelpers.time.latest());
    assert.equal(await sys.voters.read.wasRegistered([carol!.account.address, now - 1n]), false);
    assert.equal(await sys.governor.read.getVotes([carol!.account.address, now - 1n]), 0n);
    await reverts(sys.voters.read.wasRegistered([carol!.account.address, now + 10n]), "FutureLookup");
    assert.equal(await sys.voters.read.voterCount(), 4n);
  });

  it("refuses a zero admin and a zero voter", async () => {
    await reverts(viem.deployContract("VoterRegistry", [zeroAddress]), "ZeroAddress");
    const zero = encodeFunctionData({
      abi: sys.voters.abi,
      functionName: "register",
      args: [zeroAddress, keccak256("0x04")],
    });
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, sys.council.slice(0, 2), { to: sys.voters.address, data: zero }),
      "ZeroAddress",
    );
    await reverts(
      viem.deployContract("QuadraticGovernor", [sys.token.address, sys.timelock.address, zeroAddress, 1, 10, 0n, 0n]),
      "ZeroAddress",
    );
  });

  it("changes the quorum only by proposal", async () => {
    await reverts(sys.governor.write.setQuorum([1n]), "GovernorOnlyExecutor");
    const setup = await viem.deployContract("TreasurySetup");
    await reverts(setup.write.setUp([zeroAddress, zeroAddress]), "OnlyDelegateCall");
    assert.equal(await sys.guard.read.supportsInterface(["0xe6d7a83a"]), true);
    await sys.guard.read.checkAfterExecution([keccak256("0x"), true]);
  });
});

describe("gas", () => {
  it("castVote stays under 100,000 gas", () => {
    console.log(
      `      gas: propose ${gas.propose}, castVote ${gas.castVote}, queue ${gas.queue}, execute ${gas.execute}`,
    );
    assert.ok(gas.castVote! <= 100_000n, `castVote ${gas.castVote}`);
  });
});

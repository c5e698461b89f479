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
  safeCall,
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

async function register(w: (typeof sys.wallets)[number]) {
  return sys.registerHuman(w);
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

const gas: Record<string, bigint> = {};
const votes = {
  alice: await fund(alice, 1_000_000n * X0T),
  bob: await fund(bob, 250_000n * X0T),
  carol: await fund(carol, 40_000n * X0T),
};
for (const w of [alice, bob, carol]) gas.register = (await register(w)).gas;
await networkHelpers.mine(1);

describe("roles after deployment", () => {
  it("leaves every admin role with the timelock and none with the deployer", async () => {
    const admin = await sys.token.read.DEFAULT_ADMIN_ROLE();
    for (const c of [sys.token, sys.registry, sys.credit, sys.rewards, sys.voters] as const) {
      // (VoterRegistry has no other role: nobody registers anyone else.)
      assert.equal(await c.read.hasRole([admin, sys.timelock.address]), true, c.address);
      assert.equal(await c.read.hasRole([admin, sys.deployer.account.address]), false, c.address);
    }
    assert.equal(await sys.timelock.read.hasRole([admin, sys.deployer.account.address]), false);
    assert.equal(
      await sys.timelock.read.hasRole([await sys.timelock.read.PROPOSER_ROLE(), sys.governor.address]),
      true,
    );
    assert.equal(await sys.token.read.balanceOf([sys.safeAddress]), 300_000_000n * X0T);
    const [modules] = (await publicClient.readContract({
      address: sys.safeAddress,
      abi: safeAbi,
      functionName: "getModulesPaginated",
      args: ["0x0000000000000000000000000000000000000001", 10n],
    })) as [Address[], Address];
    assert.deepEqual(modules, [sys.executor.address], "the executor is the Safe's only module");
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

  it("pays from the Safe treasury through the TreasuryExecutor module, with no council signature", async () => {
    const amount = 50_000n * X0T;
    const transfer = encodeFunctionData({
      abi: sys.token.abi,
      functionName: "transfer",
      args: [outsider!.account.address, amount],
    });
    const call = safeCall(sys.executor.address, sys.safeAddress, sys.token.address, transfer);
    const p = await propose([call.target], [call.calldata], "Grant 50,000 X0T");
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

describe("the council pays out within its allowlist and cap, and nothing else", () => {
  it("refuses a council-signed addOwner, threshold change, module change, delegate, approve and delegatecall", async () => {
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
        args: ["0x0000000000000000000000000000000000000001", sys.executor.address],
      }),
      encodeFunctionData({ abi: safeAbi, functionName: "setGuard", args: [zeroAddress] }),
    ];
    for (const data of selfCalls) {
      await reverts(
        execSafeTransaction(connection, sys.safeAddress, sys.council, { to: sys.safeAddress, data }),
        "CallNotAllowed",
      );
    }
    const tokenCalls: Hex[] = [
      encodeFunctionData({ abi: sys.token.abi, functionName: "delegate", args: [outsider!.account.address] }),
      encodeFunctionData({ abi: sys.token.abi, functionName: "approve", args: [outsider!.account.address, 1n] }),
    ];
    for (const data of tokenCalls) {
      await reverts(
        execSafeTransaction(connection, sys.safeAddress, sys.council, { to: sys.token.address, data }),
        "CallNotAllowed",
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

  it("lets the council pay X0T with its threshold, up to the 500,000 X0T cap per 30 days", async () => {
    const transfer = (amount: bigint) =>
      encodeFunctionData({ abi: sys.token.abi, functionName: "transfer", args: [carol!.account.address, amount] });
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, sys.council.slice(0, 1), {
        to: sys.token.address,
        data: transfer(10n * X0T),
      }),
      "GS020",
    );
    const receipt = await execSafeTransaction(connection, sys.safeAddress, sys.council.slice(1, 3), {
      to: sys.token.address,
      data: transfer(10n * X0T),
    });
    assert.equal(receipt.status, "success");
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, sys.council.slice(1, 3), {
        to: sys.token.address,
        data: transfer(500_000n * X0T),
      }),
      "CapExceeded",
    );
    await execSafeTransaction(connection, sys.safeAddress, sys.council.slice(1, 3), {
      to: sys.token.address,
      data: transfer(499_990n * X0T),
    });
    const index = BigInt(await networkHelpers.time.latest()) / BigInt(await sys.guard.read.period());
    const [spentTokens] = await sys.guard.read.spent([sys.safeAddress, index]);
    assert.equal(spentTokens, 500_000n * X0T, "the cap is used up");
  });

  it("lets the council send ETH for gas up to 1 ETH per period, never to the Safe itself", async () => {
    await networkHelpers.setBalance(sys.safeAddress, 5n * 10n ** 18n);
    const receipt = await execSafeTransaction(connection, sys.safeAddress, sys.council.slice(0, 2), {
      to: outsider!.account.address,
      data: "0x",
      value: 10n ** 18n,
    });
    assert.equal(receipt.status, "success");
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, sys.council.slice(0, 2), {
        to: outsider!.account.address,
        data: "0x",
        value: 1n,
      }),
      "CapExceeded",
    );
    await reverts(
      execSafeTransaction(connection, sys.safeAddress, sys.council.slice(0, 2), {
        to: sys.safeAddress,
        data: "0x",
      }),
      "CallNotAllowed",
    );
  });

  it("lets the timelock add an owner by proposal (module transaction, guard not involved)", async () => {
    const add = encodeFunctionData({
      abi: safeAbi,
      functionName: "addOwnerWithThreshold",
      args: [outsider!.account.address, 2n],
    });
    const call = safeCall(sys.executor.address, sys.safeAddress, sys.safeAddress, add);
    const p = await propose([call.target], [call.calldata], "Add an owner");
    await passAndQueue(p);
    await execute(p);
    const owners = (await publicClient.readContract({
      address: sys.safeAddress,
      abi: safeAbi,
      functionName: "getOwners",
    })) as Address[];
    assert.equal(owners.length, 4);
  });

  it("lets the DAO raise the cap by proposal; nobody else can, and the token is set once", async () => {
    const setCaps = encodeFunctionData({
      abi: sys.guard.abi,
      functionName: "setCaps",
      args: [1_000_000n * X0T, 2n * 10n ** 18n, 7n * 24n * 3600n],
    });
    await reverts(sys.guard.write.setCaps([1n, 1n, 1n]), "Unauthorized");
    await reverts(
      sys.guard.write.setToken([outsider!.account.address], { account: outsider!.account }),
      "Unauthorized",
    );
    await reverts(sys.guard.write.setToken([outsider!.account.address]), "TokenAlreadySet");
    const p = await propose([sys.guard.address], [setCaps], "Cap 1M X0T per week");
    await passAndQueue(p);
    await execute(p);
    assert.equal(await sys.guard.read.tokenCap(), 1_000_000n * X0T);
    assert.equal(await sys.guard.read.period(), 7n * 24n * 3600n);
  });
});

describe("Sybil resistance", () => {
  it("a whale splitting its tokens across 100 fresh addresses gains nothing", async () => {
    const total = 10_000_000n * X0T;
    const whaleVotes = await fund(whale!, total);
    await register(whale!);
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
    await register(outsider!);
    assert.equal(await sys.governor.read.getVotes([outsider!.account.address, snapshot]), 0n);
  });
});

describe("voter registry: permissionless registration with EAS attestations", () => {
  it("refuses a zero admin or token, a zero source, and a governor without a registry", async () => {
    await reverts(viem.deployContract("VoterRegistry", [zeroAddress, sys.token.address]), "ZeroAddress");
    await reverts(viem.deployContract("VoterRegistry", [alice!.account.address, zeroAddress]), "ZeroAddress");
    await reverts(
      viem.deployContract("QuadraticGovernor", [
        sys.token.address,
        sys.timelock.address,
        zeroAddress,
        1,
        10,
        0n,
        0n,
        zeroAddress,
        0,
        zeroAddress,
      ]),
      "ZeroAddress",
    );
    await reverts(
      viem.deployContract("EASPersonhoodSource", [zeroAddress, keccak256("0x"), alice!.account.address]),
      "ZeroAddress",
    );
    await reverts(viem.deployContract("TreasuryExecutor", [zeroAddress]), "ZeroAddress");
    await reverts(viem.deployContract("CouncilGuard", [zeroAddress, 1n, 1n, 1n]), "InvalidParameter");
    await reverts(viem.deployContract("CouncilGuard", [alice!.account.address, 1n, 1n, 0n]), "InvalidParameter");
    const guard = await viem.deployContract("CouncilGuard", [alice!.account.address, 1n, 1n, 1n]);
    await reverts(guard.write.setToken([zeroAddress]), "InvalidParameter");
    await reverts(sys.voters.write.setSource([zeroAddress, true]), "AccessControlUnauthorizedAccount");
  });

  it("changes the quorum only by proposal; TreasurySetup is delegate-call only; the guard is a Safe guard", async () => {
    await reverts(sys.governor.write.setQuorum([1n]), "GovernorOnlyExecutor");
    const setup = await viem.deployContract("TreasurySetup");
    await reverts(setup.write.setUp([zeroAddress, zeroAddress]), "OnlyDelegateCall");
    assert.equal(await sys.guard.read.supportsInterface(["0xe6d7a83a"]), true);
    await sys.guard.read.checkAfterExecution([keccak256("0x"), true]);
    await reverts(
      sys.executor.write.exec([sys.safeAddress, sys.token.address, 0n, "0x"], { account: alice!.account }),
      "Unauthorized",
    );
  });
});

describe("gas", () => {
  it("castVote stays under 100,000 gas", () => {
    console.log(
      `      gas: register (EAS attestation) ${gas.register}, propose ${gas.propose}, castVote ${gas.castVote}, queue ${gas.queue}, execute ${gas.execute}`,
    );
    assert.ok(gas.castVote! <= 100_000n, `castVote ${gas.castVote}`);
  });
});

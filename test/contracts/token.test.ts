import assert from "node:assert/strict";
import { before, beforeEach, describe, it } from "node:test";
import { getAddress, parseSignature, zeroAddress } from "viem";
import { connect, deployProtocol, fund, type Protocol, X0T } from "../helpers/protocol.js";

describe("X0T", async () => {
  const connection = await connect();
  const { viem, networkHelpers } = connection;
  let p: Protocol;
  let restore: () => Promise<void>;

  before(async () => {
    p = await deployProtocol(connection);
    const snapshot = await networkHelpers.takeSnapshot();
    restore = () => snapshot.restore();
  });
  beforeEach(async () => restore());

  const alice = () => p.wallets[2]!;
  const bob = () => p.wallets[3]!;

  it("mints the documented genesis allocation and leaves the rest of the cap as reward reserve", async () => {
    assert.equal(await p.token.read.totalSupply(), 400_000_000n * X0T);
    assert.equal(await p.token.read.balanceOf([p.treasury.account.address]), 300_000_000n * X0T);
    assert.equal(await p.token.read.balanceOf([p.deployer.account.address]), 100_000_000n * X0T);
    assert.equal(await p.token.read.cap(), 1_000_000_000n * X0T);
    assert.equal(await p.token.read.burnBps(), 100);
    const events = await p.token.getEvents.GenesisAllocated({}, { fromBlock: 0n });
    assert.deepEqual(
      events.map((e) => [e.args.recipient, e.args.amount]),
      [
        [getAddress(p.treasury.account.address), 300_000_000n * X0T],
        [getAddress(p.deployer.account.address), 100_000_000n * X0T],
      ],
    );
  });

  it("refuses a genesis above GENESIS_MAX and a zero admin", async () => {
    const admin = p.deployer.account.address;
    await viem.assertions.revertWithCustomErrorWithArgs(
      viem.deployContract("X0T", [admin, [{ recipient: admin, amount: 400_000_001n * X0T }], 100]),
      p.token,
      "GenesisTooLarge",
      [400_000_001n * X0T, 400_000_000n * X0T],
    );
    await viem.assertions.revertWithCustomError(
      viem.deployContract("X0T", [zeroAddress, [], 100]),
      p.token,
      "ZeroAddress",
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      viem.deployContract("X0T", [admin, [], 501]),
      p.token,
      "BurnRateTooHigh",
      [501, 500],
    );
  });

  it("burns 1% of a transfer as a real Transfer to the zero address", async () => {
    await fund(p, alice().account.address, 1_000n * X0T);
    const supply = await p.token.read.totalSupply();
    const hash = await p.token.write.transfer([bob().account.address, 200n * X0T], { account: alice().account });
    assert.equal(await p.token.read.balanceOf([alice().account.address]), 800n * X0T);
    assert.equal(await p.token.read.balanceOf([bob().account.address]), 198n * X0T);
    assert.equal(await p.token.read.totalSupply(), supply - 2n * X0T);
    const receipt = await p.publicClient.getTransactionReceipt({ hash });
    const transfers = await p.token.getEvents.Transfer({}, { blockHash: receipt.blockHash });
    assert.deepEqual(
      transfers.map((e) => [e.args.to, e.args.value]),
      [
        [zeroAddress, 2n * X0T],
        [getAddress(bob().account.address), 198n * X0T],
      ],
    );
  });

  it("charges the fee on transferFrom and reports it in transferFee", async () => {
    await fund(p, alice().account.address, 100n * X0T);
    await p.token.write.approve([bob().account.address, 100n * X0T], { account: alice().account });
    assert.equal(await p.token.read.transferFee([alice().account.address, bob().account.address, 100n * X0T]), X0T);
    await p.token.write.transferFrom([alice().account.address, bob().account.address, 100n * X0T], {
      account: bob().account,
    });
    assert.equal(await p.token.read.balanceOf([bob().account.address]), 99n * X0T);
  });

  it("exempts protocol contracts both ways, by governance only, with an event", async () => {
    assert.equal(await p.token.read.isFeeExempt([p.registry.address]), true);
    assert.equal(await p.token.read.isFeeExempt([p.credit.address]), true);
    assert.equal(await p.token.read.transferFee([alice().account.address, p.credit.address, 100n]), 0n);
    await viem.assertions.emitWithArgs(
      p.token.write.setFeeExempt([alice().account.address, true]),
      p.token,
      "FeeExemptionSet",
      [alice().account.address, true],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.token.write.setFeeExempt([bob().account.address, true], { account: bob().account }),
      p.token,
      "AccessControlUnauthorizedAccount",
      [bob().account.address, "0x0000000000000000000000000000000000000000000000000000000000000000"],
    );
  });

  it("lets governance change the burn rate within the hard maximum", async () => {
    await viem.assertions.emitWithArgs(p.token.write.setBurnBps([250]), p.token, "BurnRateChanged", [100, 250]);
    assert.equal(await p.token.read.transferFee([alice().account.address, bob().account.address, 1_000n]), 25n);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.token.write.setBurnBps([501]),
      p.token,
      "BurnRateTooHigh",
      [501, 500],
    );
    await p.token.write.setBurnBps([0]);
    await fund(p, alice().account.address, 10n);
    await p.token.write.transfer([bob().account.address, 10n], { account: alice().account });
    assert.equal(await p.token.read.balanceOf([bob().account.address]), 10n);
    await viem.assertions.revertWithCustomError(
      p.token.write.setBurnBps([50], { account: alice().account }),
      p.token,
      "AccessControlUnauthorizedAccount",
    );
  });

  it("lets only the minter mint, and never above the cap", async () => {
    const minter = await p.token.read.MINTER_ROLE();
    assert.equal(await p.token.read.hasRole([minter, p.rewards.address]), true);
    assert.equal(await p.token.read.hasRole([minter, p.deployer.account.address]), false);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.token.write.mint([alice().account.address, 1n]),
      p.token,
      "AccessControlUnauthorizedAccount",
      [p.deployer.account.address, minter],
    );
    await p.token.write.grantRole([minter, p.deployer.account.address]);
    await p.token.write.mint([alice().account.address, 600_000_000n * X0T]);
    assert.equal(await p.token.read.totalSupply(), await p.token.read.cap());
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.token.write.mint([alice().account.address, 1n]),
      p.token,
      "ERC20ExceededCap",
      [1_000_000_000n * X0T + 1n, 1_000_000_000n * X0T],
    );
  });

  it("burns without a fee and frees room under the cap", async () => {
    await fund(p, alice().account.address, 100n * X0T);
    const supply = await p.token.read.totalSupply();
    await p.token.write.burn([40n * X0T], { account: alice().account });
    assert.equal(await p.token.read.balanceOf([alice().account.address]), 60n * X0T);
    assert.equal(await p.token.read.totalSupply(), supply - 40n * X0T);
  });

  it("accepts an EIP-2612 permit and checkpoints votes on a timestamp clock", async () => {
    assert.equal(await p.token.read.CLOCK_MODE(), "mode=timestamp");
    await fund(p, alice().account.address, 1_000n * X0T);
    await p.token.write.delegate([alice().account.address], { account: alice().account });
    assert.equal(await p.token.read.getVotes([alice().account.address]), 1_000n * X0T);
    const deadline = BigInt((await networkHelpers.time.latest()) + 3600);
    const nonce = await p.token.read.nonces([alice().account.address]);
    const signature = await alice().signTypedData({
      domain: { name: "x0tta6bl4", version: "1", chainId: p.chainId, verifyingContract: p.token.address },
      types: {
        Permit: [
          { name: "owner", type: "address" },
          { name: "spender", type: "address" },
          { name: "value", type: "uint256" },
          { name: "nonce", type: "uint256" },
          { name: "deadline", type: "uint256" },
        ],
      },
      primaryType: "Permit",
      message: { owner: alice().account.address, spender: bob().account.address, value: 5n * X0T, nonce, deadline },
    });
    const { v, r, s } = parseSignature(signature);
    await p.token.write.permit([alice().account.address, bob().account.address, 5n * X0T, deadline, Number(v), r, s]);
    assert.equal(await p.token.read.allowance([alice().account.address, bob().account.address]), 5n * X0T);
    await p.token.write.transferFrom([alice().account.address, bob().account.address, 5n * X0T], {
      account: bob().account,
    });
    // Votes follow the balance after the fee: 1,000 - 5.
    assert.equal(await p.token.read.getVotes([alice().account.address]), 995n * X0T);
  });
});

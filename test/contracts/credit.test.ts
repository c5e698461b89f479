import assert from "node:assert/strict";
import { before, beforeEach, describe, it } from "node:test";
import { getAddress, parseSignature, recoverAddress, zeroAddress } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { signClientKeyAuthorization } from "@x0tta6bl4/relayer/accounting/receipts";
import { authorizeKey, buyCredit, connect, deployProtocol, fund, GB, type Protocol, X0T } from "../helpers/protocol.js";

describe("BandwidthCredit", async () => {
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

  const payer = () => p.wallets[2]!;
  const other = () => p.wallets[3]!;
  const relayer = () => getAddress(p.wallets[5]!.account.address);
  /** Governance points `consumer` at the deployer so consume() can be exercised on its own. */
  const consumeDirectly = () => p.credit.write.setEpochRewards([p.deployer.account.address]);

  it("sells 1 GB per X0T at the default price and escrows the payment", async () => {
    await fund(p, payer().account.address, 3n * X0T);
    await p.token.write.approve([p.credit.address, 3n * X0T], { account: payer().account });
    await viem.assertions.emitWithArgs(
      p.credit.write.buy([3n * X0T], { account: payer().account }),
      p.credit,
      "CreditPurchased",
      [getAddress(payer().account.address), 3n * X0T, 3n * GB, X0T],
    );
    assert.deepEqual(await p.credit.read.creditOf([payer().account.address]), [3n * GB, 3n * X0T]);
    assert.equal(await p.token.read.balanceOf([p.credit.address]), 3n * X0T);
  });

  it("buys in one transaction with an EIP-2612 permit", async () => {
    await fund(p, payer().account.address, 2n * X0T);
    const deadline = BigInt((await networkHelpers.time.latest()) + 600);
    const signature = await payer().signTypedData({
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
      message: { owner: payer().account.address, spender: p.credit.address, value: 2n * X0T, nonce: 0n, deadline },
    });
    const { v, r, s } = parseSignature(signature);
    const hash = await p.credit.write.buyWithPermit([2n * X0T, deadline, Number(v), r, s], {
      account: payer().account,
    });
    const receipt = await p.publicClient.getTransactionReceipt({ hash });
    assert.equal(receipt.status, "success");
    assert.deepEqual(await p.credit.read.creditOf([payer().account.address]), [2n * GB, 2n * X0T]);
  });

  it("refuses empty and dust purchases", async () => {
    await fund(p, payer().account.address, X0T);
    await p.token.write.approve([p.credit.address, X0T], { account: payer().account });
    await viem.assertions.revertWithCustomError(
      p.credit.write.buy([0n], { account: payer().account }),
      p.credit,
      "ZeroAmount",
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.buy([10n ** 9n - 1n], { account: payer().account }),
      p.credit,
      "PurchaseTooSmall",
      [10n ** 9n - 1n, X0T],
    );
  });

  it("credits what arrived when the contract is not fee-exempt", async () => {
    await p.token.write.setFeeExempt([p.credit.address, false]);
    await fund(p, payer().account.address, 100n * X0T);
    await p.token.write.approve([p.credit.address, 100n * X0T], { account: payer().account });
    await p.credit.write.buy([100n * X0T], { account: payer().account });
    assert.deepEqual(await p.credit.read.creditOf([payer().account.address]), [99n * GB, 99n * X0T]);
  });

  it("authorises a client key only with the key's own proof, once, for one account forever", async () => {
    const key = privateKeyToAccount(generatePrivateKey());
    const forOther = await signClientKeyAuthorization(key, p.creditDomain, other().account.address);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.authorizeClientKey([key.address, forOther], { account: payer().account }),
      p.credit,
      "InvalidKeyProof",
      // The contract checks the proof against (payer, key): a proof made for another account
      // recovers to an unrelated address, which the error reports.
      [
        key.address,
        await recoverAddress({
          hash: await p.credit.read.keyAuthorizationDigest([payer().account.address, key.address]),
          signature: forOther,
        }),
      ],
    );
    await viem.assertions.revertWithCustomError(
      p.credit.write.authorizeClientKey([zeroAddress, forOther], { account: payer().account }),
      p.credit,
      "ZeroAddress",
    );
    const proof = await signClientKeyAuthorization(key, p.creditDomain, payer().account.address);
    await viem.assertions.emitWithArgs(
      p.credit.write.authorizeClientKey([key.address, proof], { account: payer().account }),
      p.credit,
      "ClientKeyAuthorized",
      [getAddress(payer().account.address), key.address],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.authorizeClientKey([key.address, forOther], { account: other().account }),
      p.credit,
      "KeyAlreadyAuthorized",
      [key.address, getAddress(payer().account.address)],
    );
  });

  it("revokes a key from the next epoch on, only by its account, once", async () => {
    const key = await authorizeKey(p, payer());
    const epoch = await p.rewards.read.currentEpoch();
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.revokeClientKey([key.address], { account: other().account }),
      p.credit,
      "NotKeyAccount",
      [key.address, getAddress(payer().account.address), getAddress(other().account.address)],
    );
    await viem.assertions.emitWithArgs(
      p.credit.write.revokeClientKey([key.address], { account: payer().account }),
      p.credit,
      "ClientKeyRevoked",
      [getAddress(payer().account.address), key.address, epoch + 1n],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.revokeClientKey([key.address], { account: payer().account }),
      p.credit,
      "KeyAlreadyRevoked",
      [key.address, epoch + 1n],
    );
    await consumeDirectly();
    // Receipts of the current epoch stay payable (no credit here, so the refusal is about credit).
    await viem.assertions.revertWithCustomError(
      p.credit.write.consume([key.address, relayer(), epoch, 1n]),
      p.credit,
      "InsufficientCredit",
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.consume([key.address, relayer(), epoch + 1n, 1n]),
      p.credit,
      "KeyRevoked",
      [key.address, epoch + 1n, epoch + 1n],
    );
  });

  it("consumes at the average price paid, refuses unknown keys, short credit and zero bytes", async () => {
    const key = await buyCredit(p, payer(), 2n * X0T); // 2 GB for 2 X0T
    await p.credit.write.setPricePerGB([3n * X0T]);
    await fund(p, payer().account.address, 3n * X0T);
    await p.token.write.approve([p.credit.address, 3n * X0T], { account: payer().account });
    await p.credit.write.buy([3n * X0T], { account: payer().account }); // +1 GB for 3 X0T
    assert.deepEqual(await p.credit.read.creditOf([payer().account.address]), [3n * GB, 5n * X0T]);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.consume([key.address, relayer(), 0n, 1n]),
      p.credit,
      "OnlyEpochRewards",
      [getAddress(p.deployer.account.address)],
    );
    await consumeDirectly();
    const unknown = privateKeyToAccount(generatePrivateKey()).address;
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.consume([unknown, relayer(), 0n, 1n]),
      p.credit,
      "UnknownClientKey",
      [unknown],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.consume([key.address, relayer(), 0n, 3n * GB + 1n]),
      p.credit,
      "InsufficientCredit",
      [getAddress(payer().account.address), 3n * GB, 3n * GB + 1n],
    );
    await viem.assertions.revertWithCustomError(
      p.credit.write.consume([key.address, relayer(), 0n, 0n]),
      p.credit,
      "ZeroAmount",
    );
    // 1 GB of 3 releases a third of the 5 X0T escrow.
    await viem.assertions.emitWithArgs(
      p.credit.write.consume([key.address, relayer(), 4n, GB]),
      p.credit,
      "CreditConsumed",
      [getAddress(payer().account.address), relayer(), 4n, key.address, GB, (5n * X0T) / 3n],
    );
    // The last bytes release the whole remainder, dust included.
    await p.credit.write.consume([key.address, relayer(), 4n, 2n * GB]);
    assert.deepEqual(await p.credit.read.creditOf([payer().account.address]), [0n, 0n]);
    assert.equal(await p.credit.read.unsettled(), 5n * X0T);
  });

  it("settles by burning consumed credit and paying the treasury its share", async () => {
    const key = await buyCredit(p, payer(), 10n * X0T);
    await consumeDirectly();
    await p.credit.write.consume([key.address, relayer(), 0n, 10n * GB]);
    const supply = await p.token.read.totalSupply();
    const treasuryBefore = await p.token.read.balanceOf([p.treasury.account.address]);
    await viem.assertions.emitWithArgs(p.credit.write.settle({ account: other().account }), p.credit, "CreditSettled", [
      (10n * X0T * 9_500n) / 10_000n,
      (10n * X0T * 500n) / 10_000n,
    ]);
    assert.equal(await p.token.read.totalSupply(), supply - (10n * X0T * 9_500n) / 10_000n);
    assert.equal(await p.token.read.balanceOf([p.treasury.account.address]), treasuryBefore + X0T / 2n);
    assert.equal(await p.credit.read.unsettled(), 0n);
    assert.equal(await p.token.read.balanceOf([p.credit.address]), 0n);
    // Nothing to settle: a no-op, no event.
    const hash = await p.credit.write.settle();
    const logs = (await p.publicClient.getTransactionReceipt({ hash })).logs;
    assert.equal(logs.length, 0);
  });

  it("lets governance set price, treasury share, treasury and consumer within bounds", async () => {
    await viem.assertions.emitWithArgs(p.credit.write.setPricePerGB([2n * X0T]), p.credit, "PriceChanged", [
      X0T,
      2n * X0T,
    ]);
    await viem.assertions.revertWithCustomError(p.credit.write.setPricePerGB([0n]), p.credit, "ZeroAmount");
    await viem.assertions.emitWithArgs(
      p.credit.write.setTreasuryShareBps([1_000]),
      p.credit,
      "TreasuryShareChanged",
      [500, 1_000],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.setTreasuryShareBps([5_001]),
      p.credit,
      "TreasuryShareTooHigh",
      [5_001, 5_000],
    );
    const newTreasury = getAddress(other().account.address);
    await viem.assertions.emitWithArgs(p.credit.write.setTreasury([newTreasury]), p.credit, "TreasuryChanged", [
      getAddress(p.treasury.account.address),
      newTreasury,
    ]);
    await viem.assertions.revertWithCustomError(p.credit.write.setTreasury([zeroAddress]), p.credit, "ZeroAddress");
    await viem.assertions.emitWithArgs(p.credit.write.setEpochRewards([newTreasury]), p.credit, "EpochRewardsChanged", [
      getAddress(p.rewards.address),
      newTreasury,
    ]);
    await viem.assertions.revertWithCustomError(p.credit.write.setEpochRewards([zeroAddress]), p.credit, "ZeroAddress");
    await viem.assertions.revertWithCustomError(
      p.credit.write.setPricePerGB([1n], { account: payer().account }),
      p.credit,
      "AccessControlUnauthorizedAccount",
    );
    await viem.assertions.revertWithCustomError(
      viem.deployContract("BandwidthCredit", [zeroAddress, newTreasury, X0T, 0, newTreasury]),
      p.credit,
      "ZeroAddress",
    );
  });
});

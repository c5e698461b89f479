import assert from "node:assert/strict";
import { before, beforeEach, describe, it } from "node:test";
import { decodeErrorResult, getAddress, parseSignature, recoverAddress, zeroAddress } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { signClientKeyAuthorization, signLockRequest } from "@x0tta6bl4/relayer/accounting/receipts";
import {
  authorizeKey,
  buyCredit,
  connect,
  deployProtocol,
  fund,
  GB,
  lockFor,
  type Protocol,
  warpToEpoch,
  X0T,
} from "../helpers/protocol.js";

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

  it("authorises a client key only with the key's own proof and a non-zero cap, once, for one account forever", async () => {
    const key = privateKeyToAccount(generatePrivateKey());
    const cap = 5n * GB;
    const forOther = await signClientKeyAuthorization(key, p.creditDomain, other().account.address, cap);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.authorizeClientKey([key.address, cap, forOther], { account: payer().account }),
      p.credit,
      "InvalidKeyProof",
      // A proof made for another account recovers to an unrelated address, which the error reports.
      [
        key.address,
        await recoverAddress({
          hash: await p.credit.read.keyAuthorizationDigest([payer().account.address, key.address, cap]),
          signature: forOther,
        }),
      ],
    );
    await viem.assertions.revertWithCustomError(
      p.credit.write.authorizeClientKey([zeroAddress, cap, forOther], { account: payer().account }),
      p.credit,
      "ZeroAddress",
    );
    await viem.assertions.revertWithCustomError(
      p.credit.write.authorizeClientKey([key.address, 0n, forOther], { account: payer().account }),
      p.credit,
      "ZeroAmount",
    );
    const proof = await signClientKeyAuthorization(key, p.creditDomain, payer().account.address, cap);
    await viem.assertions.emitWithArgs(
      p.credit.write.authorizeClientKey([key.address, cap, proof], { account: payer().account }),
      p.credit,
      "ClientKeyAuthorized",
      [getAddress(payer().account.address), key.address, cap],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.authorizeClientKey([key.address, cap, forOther], { account: other().account }),
      p.credit,
      "KeyAlreadyAuthorized",
      [key.address, getAddress(payer().account.address)],
    );
    await viem.assertions.emitWithArgs(
      p.credit.write.setClientKeyCap([key.address, 2n * GB], { account: payer().account }),
      p.credit,
      "ClientKeyCapChanged",
      [getAddress(payer().account.address), key.address, 2n * GB],
    );
    await viem.assertions.revertWithCustomError(
      p.credit.write.setClientKeyCap([key.address, 0n], { account: payer().account }),
      p.credit,
      "ZeroAmount",
    );
  });

  it("revokes a key at once, only by its account, once; its locks stay payable", async () => {
    const key = await buyCredit(p, payer(), 2n * X0T);
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, payer(), relayer(), GB, epoch);
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
      [getAddress(payer().account.address), key.address],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.revokeClientKey([key.address], { account: payer().account }),
      p.credit,
      "KeyAlreadyRevoked",
      [key.address],
    );
    await consumeDirectly();
    await p.credit.write.consume([key.address, relayer(), epoch, 1_000n, GB]);
    assert.equal((await p.credit.read.lockOf([payer().account.address, relayer()])).bytesPaid, GB);
  });

  it("locks free credit for one relay at the average price, directly or from signed requests", async () => {
    const key = await buyCredit(p, payer(), 2n * X0T, 3n * GB); // 2 GB for 2 X0T
    await p.credit.write.setPricePerGB([3n * X0T]);
    await fund(p, payer().account.address, 3n * X0T);
    await p.token.write.approve([p.credit.address, 3n * X0T], { account: payer().account });
    await p.credit.write.buy([3n * X0T], { account: payer().account }); // +1 GB for 3 X0T
    const epoch = await p.rewards.read.currentEpoch();
    // 1 GB of 3 moves a third of the 5 X0T escrow.
    await viem.assertions.emitWithArgs(
      p.credit.write.lock([relayer(), GB, epoch + 2n], { account: payer().account }),
      p.credit,
      "CreditLocked",
      [getAddress(payer().account.address), relayer(), zeroAddress, GB, (5n * X0T) / 3n, epoch + 2n],
    );
    const lock = (args: readonly [`0x${string}`, bigint, bigint]) =>
      p.credit.write.lock(args, { account: payer().account });
    await viem.assertions.revertWithCustomError(lock([zeroAddress, GB, epoch]), p.credit, "ZeroAddress");
    await viem.assertions.revertWithCustomError(lock([relayer(), 0n, epoch]), p.credit, "ZeroAmount");
    await viem.assertions.revertWithCustomError(lock([relayer(), GB, epoch + 169n]), p.credit, "InvalidExpiry");
    await viem.assertions.revertWithCustomError(lock([relayer(), 3n * GB, epoch]), p.credit, "InsufficientCredit");
    // A relay lands a signed request; the expiry of a lock only moves later.
    const request = (bytes: bigint, nonce: bigint, expiresEpoch = epoch + 1n, signer = key) =>
      signLockRequest(signer, p.creditDomain, { relayer: relayer(), bytes, expiresEpoch, nonce });
    const reasons = async (requests: Awaited<ReturnType<typeof request>>[]) => {
      const hash = await p.credit.write.openLocks([requests], { account: other().account });
      const { blockHash } = await p.publicClient.getTransactionReceipt({ hash });
      const events = await p.credit.getEvents.LockRejected({}, { blockHash });
      return events.map((e) => decodeErrorResult({ abi: p.credit.abi, data: e.args.reason! }).errorName);
    };
    const stranger = privateKeyToAccount(generatePrivateKey());
    const forged = { ...(await request(GB, 9n)), key: (await authorizeKey(p, payer())).address };
    assert.deepEqual(
      await reasons([
        await request(GB, 1n),
        await request(GB, 1n),
        await request(3n * GB, 2n),
        await request(GB, 3n, epoch, stranger),
        forged,
      ]),
      ["NonceUsed", "KeyCapExceeded", "UnknownClientKey", "InvalidLockSignature"],
    );
    assert.equal(await p.credit.read.nonceUsed([key.address, 1n]), true);
    assert.equal(await p.credit.read.nonceUsed([key.address, 2n]), false, "a refused request keeps its nonce");
    const locked = await p.credit.read.lockOf([payer().account.address, relayer()]);
    assert.equal(locked.bytesLeft, 2n * GB);
    assert.equal(locked.expiresEpoch, epoch + 2n);
    assert.deepEqual(await reasons([await request(2n * GB, 4n, epoch + 1n)]), ["InsufficientCredit"]);
    assert.deepEqual(await p.credit.read.creditOf([payer().account.address]), [GB, (5n * X0T) / 3n + 1n]);
  });

  it("pays a relay only the new part of a cumulative receipt, at most what its lock holds", async () => {
    const key = await buyCredit(p, payer(), 4n * X0T);
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, payer(), relayer(), 2n * GB, epoch + 1n);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.consume([key.address, relayer(), 0n, 1n, 1n]),
      p.credit,
      "OnlyEpochRewards",
      [getAddress(p.deployer.account.address)],
    );
    await consumeDirectly();
    const unknown = privateKeyToAccount(generatePrivateKey()).address;
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.credit.write.consume([unknown, relayer(), epoch, 1n, 1n]),
      p.credit,
      "UnknownClientKey",
      [unknown],
    );
    await viem.assertions.revertWithCustomError(
      p.credit.write.consume([key.address, relayer(), epoch + 2n, 1n, 1n]),
      p.credit,
      "LockExpired",
    );
    await viem.assertions.emitWithArgs(
      p.credit.write.consume([key.address, relayer(), epoch, 1_000n, GB]),
      p.credit,
      "CreditConsumed",
      [getAddress(payer().account.address), relayer(), epoch, key.address, 1_000n, GB, X0T],
    );
    await viem.assertions.revertWithCustomError(
      p.credit.write.consume([key.address, relayer(), epoch, 1_000n, GB]),
      p.credit,
      "NothingNewToPay",
    );
    // 3 GB owed, 1 GB left in the lock: pays 1 GB and half of the 2,000 new cells.
    await viem.assertions.emitWithArgs(
      p.credit.write.consume([key.address, relayer(), epoch, 3_000n, 3n * GB]),
      p.credit,
      "CreditConsumed",
      [getAddress(payer().account.address), relayer(), epoch, key.address, 1_000n, GB, X0T],
    );
    await viem.assertions.revertWithCustomError(
      p.credit.write.consume([key.address, relayer(), epoch, 3_000n, 3n * GB]),
      p.credit,
      "InsufficientCredit",
    );
  });

  it("releases an expired lock to the account only after its receipts can no longer arrive", async () => {
    await buyCredit(p, payer(), 2n * X0T);
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, payer(), relayer(), GB, epoch);
    await viem.assertions.revertWithCustomError(
      p.credit.write.releaseLock([payer().account.address, relayer()]),
      p.credit,
      "LockNotReleasable",
    );
    await warpToEpoch(connection, p, epoch + 1n);
    await viem.assertions.revertWithCustomError(
      p.credit.write.releaseLock([payer().account.address, relayer()]),
      p.credit,
      "LockNotReleasable",
    );
    await warpToEpoch(connection, p, epoch + 2n);
    await viem.assertions.emitWithArgs(
      p.credit.write.releaseLock([payer().account.address, relayer()], { account: other().account }),
      p.credit,
      "LockReleased",
      [getAddress(payer().account.address), relayer(), GB, X0T],
    );
    assert.deepEqual(await p.credit.read.creditOf([payer().account.address]), [2n * GB, 2n * X0T]);
    await viem.assertions.revertWithCustomError(
      p.credit.write.releaseLock([payer().account.address, relayer()]),
      p.credit,
      "NothingLocked",
    );
  });

  it("settles by burning consumed credit and paying the treasury its share, for EpochRewards only", async () => {
    await buyCredit(p, payer(), 10n * X0T);
    await lockFor(p, payer(), relayer(), 10n * GB);
    await viem.assertions.revertWithCustomError(p.credit.write.settle([1n, 0n]), p.credit, "OnlyEpochRewards");
    await consumeDirectly();
    const supply = await p.token.read.totalSupply();
    const treasuryBefore = await p.token.read.balanceOf([p.treasury.account.address]);
    await viem.assertions.emitWithArgs(p.credit.write.settle([10n * X0T, X0T / 10n]), p.credit, "CreditSettled", [
      10n * X0T - X0T / 10n,
      X0T / 10n,
    ]);
    assert.equal(await p.token.read.totalSupply(), supply - (10n * X0T - X0T / 10n));
    assert.equal(await p.token.read.balanceOf([p.treasury.account.address]), treasuryBefore + X0T / 10n);
    await p.credit.write.settle([0n, 0n]);
  });

  it("lets governance set price, treasury and consumer within bounds", async () => {
    await viem.assertions.emitWithArgs(p.credit.write.setPricePerGB([2n * X0T]), p.credit, "PriceChanged", [
      X0T,
      2n * X0T,
    ]);
    await viem.assertions.revertWithCustomError(p.credit.write.setPricePerGB([0n]), p.credit, "ZeroAmount");
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
      viem.deployContract("BandwidthCredit", [zeroAddress, newTreasury, X0T, newTreasury]),
      p.credit,
      "ZeroAddress",
    );
  });
});

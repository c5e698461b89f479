import assert from "node:assert/strict";
import { before, beforeEach, describe, it } from "node:test";
import { type Address, decodeErrorResult, getAddress, hashTypedData, type Hex, type LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  RECEIPT_TYPES,
  type SignedAttestation,
  type SignedReceipt,
  signReceipt,
  signUptime,
  sortAttestations,
  sortReceipts,
  verifyReceipt,
} from "@x0tta6bl4/relayer/accounting/receipts";
import {
  authorizeKey,
  buyCredit,
  connect,
  deployProtocol,
  EPOCH,
  GB,
  type Protocol,
  registerRelayer,
  type Wallet,
  warpToEpoch,
  X0T,
} from "../helpers/protocol.js";

const CELL = 1_000; // bytes per cell in these tests: 1 GB = 1,000,000 cells
const PER_CELL = X0T / 10_000n;

describe("EpochRewards", async () => {
  const connection = await connect();
  const { viem, networkHelpers } = connection;
  let p: Protocol;
  let relayers: { wallet: Wallet; address: Address; signer: LocalAccount }[];
  let payer: Wallet;
  let key: LocalAccount;
  let restore: () => Promise<void>;

  before(async () => {
    p = await deployProtocol(connection);
    relayers = [];
    for (const wallet of p.wallets.slice(3, 7)) {
      const signer = await registerRelayer(p, wallet);
      relayers.push({ wallet, address: getAddress(wallet.account.address), signer });
    }
    payer = p.wallets[2]!;
    key = await buyCredit(p, payer, 10n * X0T); // 10 GB
    const snapshot = await networkHelpers.takeSnapshot();
    restore = () => snapshot.restore();
  });
  beforeEach(async () => restore());

  const r0 = () => relayers[0]!;
  const receipt = (signer: LocalAccount, relayer: Address, epoch: bigint, cells: bigint, hops = 3, cellSize = CELL) =>
    signReceipt(signer, p.receiptDomain, { relayer, epoch, cells, cellSize, hops });
  const attest = (from: LocalAccount, relayer: Address, epoch: bigint, uptimeBps = 9_950) =>
    signUptime(from, p.receiptDomain, { relayer, epoch, uptimeBps });
  const submit = (relayer: Address, epoch: bigint, receipts: SignedReceipt[], from = r0().wallet) =>
    p.rewards.write.submitReceipts([relayer, epoch, receipts], { account: from.account });
  const abis = () => [...p.rewards.abi, ...p.credit.abi];
  async function rejections(hash: Hex) {
    const { blockHash } = await p.publicClient.getTransactionReceipt({ hash });
    const events = await p.rewards.getEvents.ReceiptRejected({}, { blockHash });
    return events.map((e) => ({ key: e.args.key!, error: decodeErrorResult({ abi: abis(), data: e.args.reason! }) }));
  }

  it("signs receipts the contract recovers (the TS and Solidity EIP-712 types agree)", async () => {
    const signed = await receipt(key, r0().address, 0n, 123n);
    assert.equal(await verifyReceipt(p.receiptDomain, r0().address, 0n, signed), true);
    assert.equal(await verifyReceipt(p.receiptDomain, r0().address, 1n, signed), false);
    const digest = await p.rewards.read.receiptDigest([r0().address, 0n, 123n, CELL, 3]);
    assert.equal(
      digest,
      hashTypedData({
        domain: p.receiptDomain,
        types: RECEIPT_TYPES,
        primaryType: "Receipt",
        message: { relayer: r0().address, epoch: 0n, cells: 123n, cellSize: CELL, hops: 3 },
      }),
    );
  });

  it("pays a 3-hop GB once: each hop debits a third and earns at most what it released", async () => {
    await warpToEpoch(connection, p, 1n);
    for (const r of relayers.slice(0, 3)) {
      await submit(r.address, 0n, [await receipt(key, r.address, 0n, 1_000_000n, 3)], r.wallet);
    }
    const [bytesLeft, escrow] = await p.credit.read.creditOf([payer.account.address]);
    assert.equal(bytesLeft, 10n * GB - 3n * (GB / 3n));
    const released = 10n * X0T - escrow;
    assert.equal(released, 3n * ((X0T * (GB / 3n)) / GB));
    // 1M cells at 0.0001 X0T would be 100 X0T a hop; the cap holds each at its third of 1 X0T.
    const account = await p.rewards.read.relayerEpoch([0n, r0().address]);
    assert.equal(account.base, (X0T * (GB / 3n)) / GB);
    assert.equal(account.boosted, account.base);
    // The consumed X0T was settled: burned, minus the treasury share.
    assert.equal(await p.credit.read.unsettled(), 0n);
    await warpToEpoch(connection, p, 2n);
    const supplyBefore = await p.token.read.totalSupply();
    let minted = 0n;
    for (const r of relayers.slice(0, 3)) {
      const before = await p.token.read.balanceOf([r.address]);
      await p.rewards.write.claim([r.address, [0n]]);
      minted += (await p.token.read.balanceOf([r.address])) - before;
    }
    assert.ok(minted <= released, `minted ${minted} > paid ${released}`);
    assert.equal(await p.token.read.totalSupply(), supplyBefore + minted);
  });

  it("pays cells at 0.0001 X0T when the payer's price covers them, and scales an oversubscribed pool pro rata", async () => {
    await p.rewards.write.setParams([
      { rewardPerCell: PER_CELL, poolPerEpoch: 5n * X0T, uptimeBonusBps: 1_000, minAttestations: 2 },
    ]);
    await p.credit.write.setPricePerGB([1_000n * X0T]); // a cell of 1,000 B now costs 0.001 X0T > 0.0001
    const rich = p.wallets[7]!;
    const richKey = await buyCredit(p, rich, 1_000n * X0T); // 1 GB at the new price
    await warpToEpoch(connection, p, 1n);
    await submit(r0().address, 0n, [await receipt(richKey, r0().address, 0n, 30_000n, 1)]);
    const r1 = relayers[1]!;
    await submit(r1.address, 0n, [await receipt(richKey, r1.address, 0n, 20_000n, 1)], r1.wallet);
    assert.equal(await p.rewards.read.pendingReward([0n, r0().address]), (3n * X0T * 5n) / 5n);
    // Claimed 3 + 2 = 5 X0T ... of a pool of 5: exactly full, no scaling.
    const r2 = relayers[2]!;
    await submit(r2.address, 0n, [await receipt(richKey, r2.address, 0n, 50_000n, 1)], r2.wallet);
    // Now 3 + 2 + 5 = 10 X0T claimed against a pool of 5: everyone gets half.
    await warpToEpoch(connection, p, 2n);
    for (const [r, expected] of [
      [r0(), (3n * X0T) / 2n],
      [r1, X0T],
      [r2, (5n * X0T) / 2n],
    ] as const) {
      await viem.assertions.emitWithArgs(p.rewards.write.claim([r.address, [0n]]), p.rewards, "RewardClaimed", [
        0n,
        r.address,
        expected,
      ]);
    }
    assert.deepEqual(await p.rewards.read.epochTotals([0n]), { claimable: 10n * X0T, pool: 5n * X0T });
  });

  it("adds 10% for attested uptime, still capped by what the payer released", async () => {
    await p.credit.write.setPricePerGB([1_000n * X0T]);
    const rich = p.wallets[7]!;
    const richKey = await buyCredit(p, rich, 1_000n * X0T);
    await warpToEpoch(connection, p, 1n);
    await submit(r0().address, 0n, [await receipt(richKey, r0().address, 0n, 10_000n, 1)]);
    const atts = sortAttestations(
      await Promise.all(relayers.slice(1, 3).map((r) => attest(r.signer, r0().address, 0n))),
    );
    await viem.assertions.emitWithArgs(
      p.rewards.write.submitUptime([r0().address, 0n, atts], { account: r0().wallet.account }),
      p.rewards,
      "UptimeAttested",
      [0n, r0().address, atts.map((a) => a.signer)],
    );
    assert.equal(await p.rewards.read.pendingReward([0n, r0().address]), (10_000n * PER_CELL * 11n) / 10n);
    // With the default price the cap binds: the bonus cannot lift a reward above the payment.
    await p.credit.write.setPricePerGB([X0T]);
    const plainKey = await buyCredit(p, p.wallets[8]!, X0T);
    const r1 = relayers[1]!;
    await submit(r1.address, 0n, [await receipt(plainKey, r1.address, 0n, 1_000n, 1)], r1.wallet);
    const others = sortAttestations([
      await attest(r0().signer, r1.address, 0n),
      await attest(relayers[2]!.signer, r1.address, 0n),
    ]);
    await p.rewards.write.submitUptime([r1.address, 0n, others], { account: r1.wallet.account });
    assert.equal(await p.rewards.read.pendingReward([0n, r1.address]), (X0T * 1_000n * 1_000n) / GB);
  });

  it("counts uptime the same whether attested before or after the receipts", async () => {
    await p.credit.write.setPricePerGB([1_000n * X0T]);
    const richKey = await buyCredit(p, p.wallets[7]!, 1_000n * X0T);
    await warpToEpoch(connection, p, 1n);
    const atts = sortAttestations(
      await Promise.all(relayers.slice(1, 3).map((r) => attest(r.signer, r0().address, 0n))),
    );
    await p.rewards.write.submitUptime([r0().address, 0n, atts], { account: r0().wallet.account });
    await submit(r0().address, 0n, [await receipt(richKey, r0().address, 0n, 10_000n, 1)]);
    const expected = (10_000n * PER_CELL * 11n) / 10n;
    assert.equal(await p.rewards.read.pendingReward([0n, r0().address]), expected);
    assert.equal((await p.rewards.read.epochTotals([0n])).claimable, expected);
  });

  it("rejects a forged, unknown, over-credit, revoked or malformed receipt and accepts the rest", async () => {
    const relayer = r0().address;
    const stranger = privateKeyToAccount(generatePrivateKey());
    const revokedKey = await authorizeKey(p, payer);
    await p.credit.write.revokeClientKey([revokedKey.address], { account: payer.account }); // from epoch 1
    const poorKey = await buyCredit(p, p.wallets[8]!, X0T); // 1 GB
    await warpToEpoch(connection, p, 2n);
    const good = await receipt(key, relayer, 1n, 1_000n, 3);
    const forgedBase = await receipt(stranger, relayer, 1n, 1_000n, 2);
    const forged = { ...forgedBase, key: key.address }; // a stranger's signature passed off as the payer's
    const unknown = await receipt(stranger, relayer, 1n, 1_000n, 1);
    const overCredit = await receipt(poorKey, relayer, 1n, 2_000_000n, 1); // 2 GB against 1 GB
    const revoked = await receipt(revokedKey, relayer, 1n, 1_000n, 1);
    const zeroHops = await receipt(key, relayer, 1n, 1_000n, 0);
    const nineHops = await receipt(key, relayer, 1n, 1_000n, 9);
    const zeroCell = { ...(await receipt(key, relayer, 1n, 1_000n, 4, 0)) };
    const tiny = await receipt(key, relayer, 1n, 1n, 5, 4); // 4 bytes / 5 hops = 0 bytes
    const batch = sortReceipts([good, forged, unknown, overCredit, revoked, zeroHops, nineHops, zeroCell, tiny]);
    const hash = await submit(relayer, 1n, batch);
    const found = await rejections(hash);
    const byName = Object.fromEntries(found.map((f) => [f.error.errorName, f]));
    assert.deepEqual(Object.keys(byName).sort(), [
      "InsufficientCredit",
      "InvalidCellSize",
      "InvalidHops",
      "InvalidReceiptSignature",
      "KeyRevoked",
      "ReceiptTooSmall",
      "UnknownClientKey",
    ]);
    assert.equal(found.length, 8);
    assert.deepEqual(byName.InvalidReceiptSignature!.error.args, [key.address, stranger.address]);
    assert.deepEqual(byName.KeyRevoked!.error.args, [revokedKey.address, 1n, 1n]);
    assert.deepEqual(byName.ReceiptTooSmall!.error.args, [1n, 4, 5]);
    await viem.assertions.emitWithArgs(Promise.resolve(hash), p.rewards, "ReceiptsSubmitted", [
      1n,
      relayer,
      1n,
      8n,
      (X0T * (1_000_000n / 3n)) / GB,
      (X0T * (1_000_000n / 3n)) / GB,
    ]);
    // Only the good receipt debited anything.
    assert.deepEqual(await p.credit.read.creditOf([p.wallets[8]!.account.address]), [GB, X0T]);
    const [left] = await p.credit.read.creditOf([payer.account.address]);
    assert.equal(left, 10n * GB - 1_000_000n / 3n);
  });

  it("counts a receipt once: replays and out-of-order batches revert, also across batches", async () => {
    const relayer = r0().address;
    const key2 = await authorizeKey(p, payer);
    await warpToEpoch(connection, p, 1n);
    const [a, b] = sortReceipts([await receipt(key, relayer, 0n, 10n, 1), await receipt(key2, relayer, 0n, 10n, 1)]);
    await viem.assertions.revertWithCustomErrorWithArgs(submit(relayer, 0n, [a!, a!]), p.rewards, "ReceiptReplayed", [
      a!.key,
      1,
    ]);
    const sortKey = (r: SignedReceipt) => (BigInt(r.key) << 8n) | BigInt(r.hops);
    await viem.assertions.revertWithCustomErrorWithArgs(
      submit(relayer, 0n, [b!, a!]),
      p.rewards,
      "ReceiptsNotAscending",
      [sortKey(b!), sortKey(a!)],
    );
    await submit(relayer, 0n, [a!]);
    await viem.assertions.revertWithCustomError(submit(relayer, 0n, [a!]), p.rewards, "ReceiptReplayed");
    // The same key on another hop count is another (cumulative) receipt.
    await submit(relayer, 0n, [await receipt(a!.key === key.address ? key : key2, relayer, 0n, 10n, 2), b!]);
    assert.equal((await p.rewards.read.relayerEpoch([0n, relayer])).base > 0n, true);
    await viem.assertions.revertWithCustomError(submit(relayer, 0n, []), p.rewards, "EmptyBatch");
  });

  it("takes receipts only from the active relayer or its signer, for a finished epoch inside the window", async () => {
    const relayer = r0().address;
    const signed = await receipt(key, relayer, 0n, 10n, 1);
    await viem.assertions.revertWithCustomErrorWithArgs(submit(relayer, 0n, [signed]), p.rewards, "EpochNotOpen", [
      0n,
      0n,
    ]);
    await warpToEpoch(connection, p, 1n);
    await viem.assertions.revertWithCustomErrorWithArgs(
      submit(relayer, 0n, [signed], payer),
      p.rewards,
      "NotRelayerOrSigner",
      [relayer, getAddress(payer.account.address)],
    );
    // The node's signer may submit for its operator.
    await networkHelpers.setBalance(r0().signer.address, 10n ** 18n);
    await p.rewards.write.submitReceipts([relayer, 0n, [signed]], { account: r0().signer });
    await warpToEpoch(connection, p, 2n);
    await viem.assertions.revertWithCustomErrorWithArgs(
      submit(relayer, 0n, [await receipt(key, relayer, 0n, 10n, 2)]),
      p.rewards,
      "EpochNotOpen",
      [0n, 2n],
    );
    await p.registry.write.unbond([await p.registry.read.minStake()], { account: r0().wallet.account });
    await viem.assertions.revertWithCustomErrorWithArgs(
      submit(relayer, 1n, [await receipt(key, relayer, 1n, 10n, 1)]),
      p.rewards,
      "RelayerNotActive",
      [relayer],
    );
  });

  it("claims once per epoch after the window, for anyone, minting to the relayer", async () => {
    const relayer = r0().address;
    await warpToEpoch(connection, p, 1n);
    await submit(relayer, 0n, [await receipt(key, relayer, 0n, 1_000n, 1)]);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.rewards.write.claim([relayer, [0n]]),
      p.rewards,
      "EpochNotFinal",
      [0n, 1n],
    );
    await warpToEpoch(connection, p, 2n);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.rewards.write.claim([relayer, [1n]]),
      p.rewards,
      "EpochNotFinal",
      [1n, 2n],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.rewards.write.claim([relayers[1]!.address, [0n]]),
      p.rewards,
      "NothingToClaim",
      [0n, relayers[1]!.address],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.rewards.write.claim([relayer, [0n, 0n]]),
      p.rewards,
      "AlreadyClaimed",
      [0n, relayer],
    );
    await p.rewards.write.claim([relayer, [0n]], { account: payer.account });
    assert.equal(await p.token.read.balanceOf([relayer]), (X0T * 1_000n * 1_000n) / GB);
    assert.equal(await p.rewards.read.pendingReward([0n, relayer]), 0n);
    await viem.assertions.revertWithCustomError(p.rewards.write.claim([relayer, [0n]]), p.rewards, "AlreadyClaimed");
  });

  it("accepts uptime only from k distinct, other, active relayers that state >= 99%", async () => {
    const relayer = r0().address;
    await warpToEpoch(connection, p, 1n);
    const [r1, r2, r3] = [relayers[1]!, relayers[2]!, relayers[3]!];
    const call = (atts: SignedAttestation[]) =>
      p.rewards.write.submitUptime([relayer, 0n, atts], { account: r0().wallet.account });
    const good = sortAttestations([await attest(r1.signer, relayer, 0n), await attest(r2.signer, relayer, 0n)]);
    await viem.assertions.revertWithCustomErrorWithArgs(call([good[0]!]), p.rewards, "NotEnoughAttestations", [1n, 2n]);
    await viem.assertions.revertWithCustomErrorWithArgs(
      call([good[1]!, good[0]!]),
      p.rewards,
      "AttestersNotAscending",
      [good[1]!.signer, good[0]!.signer],
    );
    await viem.assertions.revertWithCustomError(call([good[0]!, good[0]!]), p.rewards, "AttestersNotAscending");
    const low = sortAttestations([await attest(r1.signer, relayer, 0n, 9_899), await attest(r2.signer, relayer, 0n)]);
    await viem.assertions.revertWithCustomError(call(low), p.rewards, "UptimeOutOfRange");
    const self = sortAttestations([await attest(r0().signer, relayer, 0n), await attest(r2.signer, relayer, 0n)]);
    await viem.assertions.revertWithCustomErrorWithArgs(call(self), p.rewards, "InvalidAttester", [
      r0().signer.address,
    ]);
    const nobody = privateKeyToAccount(generatePrivateKey());
    await viem.assertions.revertWithCustomError(
      call(sortAttestations([await attest(nobody, relayer, 0n), good[0]!])),
      p.rewards,
      "InvalidAttester",
    );
    const wrongEpoch = sortAttestations([await attest(r1.signer, relayer, 5n), await attest(r2.signer, relayer, 0n)]);
    await viem.assertions.revertWithCustomError(call(wrongEpoch), p.rewards, "InvalidAttestationSignature");
    await p.registry.write.unbond([await p.registry.read.minStake()], { account: r3.wallet.account });
    const inactive = sortAttestations([await attest(r3.signer, relayer, 0n), good[0]!]);
    await viem.assertions.revertWithCustomErrorWithArgs(call(inactive), p.rewards, "InvalidAttester", [
      r3.signer.address,
    ]);
    await call(good);
    await viem.assertions.revertWithCustomErrorWithArgs(call(good), p.rewards, "UptimeAlreadyAttested", [0n, relayer]);
  });

  it("changes the epoch length from the next epoch on, keeping epoch numbers continuous", async () => {
    await warpToEpoch(connection, p, 3n, 5);
    const [epoch, endsAt] = await p.rewards.read.currentEpochEnd();
    assert.equal(epoch, 3n);
    await viem.assertions.emitWithArgs(p.rewards.write.setEpochLength([600n]), p.rewards, "EpochLengthChanged", [
      4n,
      endsAt,
      BigInt(EPOCH),
      600n,
    ]);
    assert.equal(await p.rewards.read.currentEpoch(), 3n);
    await networkHelpers.time.increaseTo(endsAt);
    assert.equal(await p.rewards.read.currentEpoch(), 4n);
    await networkHelpers.time.increaseTo(endsAt + 599n);
    assert.equal(await p.rewards.read.currentEpoch(), 4n);
    await networkHelpers.time.increaseTo(endsAt + 600n);
    assert.equal(await p.rewards.read.currentEpoch(), 5n);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.rewards.write.setEpochLength([9n]),
      p.rewards,
      "InvalidEpochLength",
      [9n],
    );
    await viem.assertions.revertWithCustomError(
      p.rewards.write.setEpochLength([7n * 86_400n + 1n]),
      p.rewards,
      "InvalidEpochLength",
    );
  });

  it("lets a second change in the same epoch replace the first", async () => {
    await warpToEpoch(connection, p, 2n, 5);
    const [, endsAt] = await p.rewards.read.currentEpochEnd();
    await p.rewards.write.setEpochLength([600n]);
    await p.rewards.write.setEpochLength([120n]);
    assert.deepEqual(await p.rewards.read.currentEpochEnd(), [2n, endsAt]);
    await networkHelpers.time.increaseTo(endsAt + 120n);
    assert.equal(await p.rewards.read.currentEpoch(), 4n);
  });

  it("lets governance set parameters within bounds only", async () => {
    const valid = { rewardPerCell: 1n, poolPerEpoch: 1n, uptimeBonusBps: 5_000, minAttestations: 32 };
    await viem.assertions.emit(p.rewards.write.setParams([valid]), p.rewards, "ParamsChanged");
    for (const bad of [
      { ...valid, poolPerEpoch: 0n },
      { ...valid, uptimeBonusBps: 5_001 },
      { ...valid, minAttestations: 0 },
      { ...valid, minAttestations: 33 },
    ]) {
      await viem.assertions.revertWithCustomError(p.rewards.write.setParams([bad]), p.rewards, "InvalidParams");
    }
    await viem.assertions.emitWithArgs(
      p.rewards.write.setSubmissionWindow([168]),
      p.rewards,
      "SubmissionWindowChanged",
      [1, 168],
    );
    for (const bad of [0, 169]) {
      await viem.assertions.revertWithCustomErrorWithArgs(
        p.rewards.write.setSubmissionWindow([bad]),
        p.rewards,
        "InvalidSubmissionWindow",
        [bad, 168],
      );
    }
    await viem.assertions.revertWithCustomError(
      p.rewards.write.setParams([valid], { account: payer.account }),
      p.rewards,
      "AccessControlUnauthorizedAccount",
    );
  });

  it("refuses zero addresses and an out-of-range epoch at deployment", async () => {
    const params = { rewardPerCell: 1n, poolPerEpoch: 1n, uptimeBonusBps: 0, minAttestations: 1 };
    const admin = p.deployer.account.address;
    await viem.assertions.revertWithCustomError(
      viem.deployContract("EpochRewards", [
        p.token.address,
        p.credit.address,
        p.registry.address,
        "0x0000000000000000000000000000000000000000",
        params,
        60n,
        1,
      ]),
      p.rewards,
      "ZeroAddress",
    );
    await viem.assertions.revertWithCustomError(
      viem.deployContract("EpochRewards", [
        p.token.address,
        p.credit.address,
        p.registry.address,
        admin,
        params,
        5n,
        1,
      ]),
      p.rewards,
      "InvalidEpochLength",
    );
  });
});

import assert from "node:assert/strict";
import { before, beforeEach, describe, it } from "node:test";
import {
  type Address,
  decodeErrorResult,
  getAddress,
  hashTypedData,
  type Hex,
  type LocalAccount,
  zeroHash,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  RECEIPT_TYPES,
  type SignedAttestation,
  type SignedReceipt,
  signReceipt,
  signUptime,
  sortAttestations,
  UPTIME_TYPES,
  verifyReceipt,
} from "@x0tta6bl4/relayer/accounting/receipts";
import {
  buyCredit,
  connect,
  deployProtocol,
  EPOCH,
  GB,
  lockFor,
  type Protocol,
  registerRelayer,
  type Wallet,
  warpToEpoch,
  X0T,
} from "../helpers/protocol.js";

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
    // Every relayer holds a lock of 2 GB up to epoch 5.
    for (const r of relayers) await lockFor(p, payer, r.address, 2n * GB, 5n);
    const snapshot = await networkHelpers.takeSnapshot();
    restore = () => snapshot.restore();
  });
  beforeEach(async () => restore());

  const r0 = () => relayers[0]!;
  const receipt = (signer: LocalAccount, relayer: Address, epoch: bigint, cells: bigint, bytes = cells * 1_000n) =>
    signReceipt(signer, p.receiptDomain, { relayer, epoch, cells, bytes });
  const attest = (from: LocalAccount, relayer: Address, epoch: bigint, answered = 7_200, probes = 7_200) =>
    signUptime(from, p.receiptDomain, { relayer, epoch, probes, answered, measurements: zeroHash });
  const submit = (relayer: Address, epoch: bigint, receipts: SignedReceipt[], from = r0().wallet) =>
    p.rewards.write.submitReceipts([relayer, epoch, receipts], { account: from.account });
  async function rejections(hash: Hex) {
    const { blockHash } = await p.publicClient.getTransactionReceipt({ hash });
    const events = await p.rewards.getEvents.ReceiptRejected({}, { blockHash });
    const abi = [...p.rewards.abi, ...p.credit.abi];
    return events.map((e) => decodeErrorResult({ abi, data: e.args.reason! }).errorName);
  }

  it("signs receipts and attestations the contract recovers (the TS and Solidity EIP-712 types agree)", async () => {
    const signed = await receipt(key, r0().address, 0n, 123n, 456n);
    assert.equal(await verifyReceipt(p.receiptDomain, r0().address, 0n, signed), true);
    assert.equal(await verifyReceipt(p.receiptDomain, r0().address, 1n, signed), false);
    assert.equal(
      await p.rewards.read.receiptDigest([r0().address, 0n, 123n, 456n]),
      hashTypedData({
        domain: p.receiptDomain,
        types: RECEIPT_TYPES,
        primaryType: "Receipt",
        message: { relayer: r0().address, epoch: 0n, cells: 123n, bytes: 456n },
      }),
    );
    const message = { relayer: r0().address, epoch: 2n, probes: 100, answered: 99, measurements: zeroHash };
    assert.equal(
      await p.rewards.read.uptimeDigest([r0().address, 2n, 100, 99, zeroHash]),
      hashTypedData({ domain: p.receiptDomain, types: UPTIME_TYPES, primaryType: "Uptime", message }),
    );
  });

  it("pays a 3-hop GB: each hop's lock pays its third, each hop earns 90% of it, minted <= burned", async () => {
    const third = GB / 3n;
    await warpToEpoch(connection, p, 1n);
    const supplyBefore = await p.token.read.totalSupply();
    for (const r of relayers.slice(0, 3)) {
      await submit(r.address, 0n, [await receipt(key, r.address, 0n, 1_000_000n, third)], r.wallet);
    }
    const account = await p.rewards.read.relayerEpoch([0n, r0().address]);
    const value = (X0T * third) / GB;
    assert.equal(account.base, (value * 9_000n) / 10_000n);
    assert.equal(account.boosted, (value * 9_900n) / 10_000n);
    await warpToEpoch(connection, p, 2n);
    let minted = 0n;
    for (const r of relayers.slice(0, 3)) {
      const before = await p.token.read.balanceOf([r.address]);
      await p.rewards.write.claim([r.address, [0n]]);
      minted += (await p.token.read.balanceOf([r.address])) - before;
    }
    assert.equal(minted, 3n * account.base);
    assert.ok((await p.token.read.totalSupply()) < supplyBefore, "burned more than minted");
  });

  it("rejects a forged or lockless receipt and accepts the rest of the batch", async () => {
    await warpToEpoch(connection, p, 1n);
    const stranger = privateKeyToAccount(generatePrivateKey());
    const forged = { ...(await receipt(stranger, r0().address, 0n, 10n)), key: key.address };
    const hash = await submit(r0().address, 0n, [forged, await receipt(key, r0().address, 0n, 10n)]);
    assert.deepEqual(await rejections(hash), ["InvalidReceiptSignature"]);
    await viem.assertions.revertWithCustomError(submit(r0().address, 0n, []), p.rewards, "EmptyBatch");
  });

  it("takes receipts only from the relayer or its signer, active at the epoch's end, for a finished epoch inside its window", async () => {
    const relayer = r0().address;
    const signed = await receipt(key, relayer, 0n, 10n);
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
    await networkHelpers.setBalance(r0().signer.address, 10n ** 18n);
    await p.rewards.write.submitReceipts([relayer, 0n, [signed]], { account: r0().signer });
    await warpToEpoch(connection, p, 2n);
    await viem.assertions.revertWithCustomErrorWithArgs(
      submit(relayer, 0n, [await receipt(key, relayer, 0n, 20n)]),
      p.rewards,
      "EpochNotOpen",
      [0n, 2n],
    );
    // A relayer registered after an epoch ended was not active in it.
    const late = p.wallets[8]!;
    await registerRelayer(p, late);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.rewards.write.submitReceipts([late.account.address, 1n, [signed]], { account: late.account }),
      p.rewards,
      "RelayerNotActive",
      [getAddress(late.account.address), 1n],
    );
  });

  it("claims once per epoch after the window, for anyone, minting to the relayer", async () => {
    const relayer = r0().address;
    await warpToEpoch(connection, p, 1n);
    await submit(relayer, 0n, [await receipt(key, relayer, 0n, 1_000n)]);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.rewards.write.claim([relayer, [0n]]),
      p.rewards,
      "EpochNotFinal",
      [0n, 1n],
    );
    await warpToEpoch(connection, p, 2n);
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
    const pending = await p.rewards.read.pendingReward([0n, relayer]);
    assert.equal(pending, (X0T * 1_000_000n * 9_000n) / GB / 10_000n);
    await p.rewards.write.claim([relayer, [0n]], { account: payer.account });
    assert.equal(await p.token.read.balanceOf([relayer]), pending);
    assert.equal(await p.rewards.read.pendingReward([0n, relayer]), 0n);
  });

  it("accepts uptime only from k other relayers registered before the epoch, on >= 99% of >= 100 probes", async () => {
    const relayer = r0().address;
    const [r1, r2, r3] = [relayers[1]!, relayers[2]!, relayers[3]!];
    // A relay registered during epoch 1 cannot vouch for epoch 1.
    await warpToEpoch(connection, p, 1n);
    const newcomer = await registerRelayer(p, p.wallets[8]!);
    await warpToEpoch(connection, p, 2n);
    const call = (atts: SignedAttestation[]) =>
      p.rewards.write.submitUptime([relayer, 1n, atts], { account: r0().wallet.account });
    const good = sortAttestations([await attest(r1.signer, relayer, 1n), await attest(r2.signer, relayer, 1n)]);
    await viem.assertions.revertWithCustomErrorWithArgs(call([good[0]!]), p.rewards, "NotEnoughAttestations", [1n, 2n]);
    await viem.assertions.revertWithCustomErrorWithArgs(
      call([good[1]!, good[0]!]),
      p.rewards,
      "AttestersNotAscending",
      [good[1]!.signer, good[0]!.signer],
    );
    for (const [answered, probes] of [
      [7_127, 7_200],
      [99, 99],
      [101, 100],
    ] as const) {
      const low = sortAttestations([await attest(r1.signer, relayer, 1n, answered, probes), good[1]!]);
      await viem.assertions.revertWithCustomError(call(low), p.rewards, "UptimeBelowMinimum");
    }
    const nobody = privateKeyToAccount(generatePrivateKey());
    for (const s of [r0().signer, newcomer, nobody]) {
      await viem.assertions.revertWithCustomErrorWithArgs(
        call(sortAttestations([await attest(s, relayer, 1n), good[0]!])),
        p.rewards,
        "InvalidAttester",
        [s.address],
      );
    }
    const wrongEpoch = sortAttestations([await attest(r1.signer, relayer, 5n), await attest(r2.signer, relayer, 1n)]);
    await viem.assertions.revertWithCustomError(call(wrongEpoch), p.rewards, "InvalidAttestationSignature");
    // An attester that left before the epoch began is no witness.
    await p.registry.write.unbond([await p.registry.read.minStake()], { account: r3.wallet.account });
    await warpToEpoch(connection, p, 3n);
    await p.rewards.write.submitReceipts([relayer, 2n, [await receipt(key, relayer, 2n, 1_000n)]], {
      account: r0().wallet.account,
    });
    const kept = sortAttestations([await attest(r3.signer, relayer, 2n), await attest(r1.signer, relayer, 2n)]);
    await p.rewards.write.submitUptime([relayer, 2n, kept], { account: r0().wallet.account }); // unbonding still counts
    await viem.assertions.revertWithCustomError(call(good), p.rewards, "EpochNotOpen"); // epoch 1's window closed
    const account = await p.rewards.read.relayerEpoch([2n, relayer]);
    assert.equal(account.uptimeBonus, true);
    assert.equal(await p.rewards.read.epochClaimable([2n]), account.boosted);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.rewards.write.submitUptime([relayer, 2n, kept], { account: r0().wallet.account }),
      p.rewards,
      "UptimeAlreadyAttested",
      [2n, relayer],
    );
  });

  it("changes the epoch length from the next epoch on, keeping epoch numbers continuous", async () => {
    await warpToEpoch(connection, p, 3n, 5);
    const [epoch, endsAt] = await p.rewards.read.currentEpochEnd();
    assert.equal(epoch, 3n);
    await viem.assertions.emit(p.rewards.write.setEpochLength([600n]), p.rewards, "EraScheduled");
    assert.equal(await p.rewards.read.currentEpoch(), 3n);
    await networkHelpers.time.increaseTo(endsAt);
    assert.equal(await p.rewards.read.currentEpoch(), 4n);
    await networkHelpers.time.increaseTo(endsAt + 599n);
    assert.equal(await p.rewards.read.currentEpoch(), 4n);
    await networkHelpers.time.increaseTo(endsAt + 600n);
    assert.equal(await p.rewards.read.currentEpoch(), 5n);
    const [era, startsAt] = await p.rewards.read.epochInfo([2n]);
    assert.equal(era.length, BigInt(EPOCH));
    assert.equal(startsAt, endsAt - 2n * BigInt(EPOCH));
    for (const bad of [9n, 7n * 86_400n + 1n]) {
      await viem.assertions.revertWithCustomErrorWithArgs(
        p.rewards.write.setEpochLength([bad]),
        p.rewards,
        "InvalidEpochLength",
        [bad],
      );
    }
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

  it("lets governance set parameters within bounds only, from the next epoch", async () => {
    const valid = {
      rewardPerCell: 1n,
      poolPerEpoch: 1n,
      relayShareBps: 9_000,
      uptimeBonusBps: 1_000,
      treasuryShareBps: 100,
      minAttestations: 32,
      submissionWindow: 168,
    };
    await viem.assertions.emit(p.rewards.write.setParams([valid]), p.rewards, "EraScheduled");
    assert.equal((await p.rewards.read.params()).minAttestations, 32);
    const current = await p.rewards.read.currentEpoch();
    assert.equal(
      (await p.rewards.read.epochInfo([current]))[0].params.minAttestations,
      2,
      "this epoch keeps its rules",
    );
    for (const bad of [
      { ...valid, poolPerEpoch: 0n },
      { ...valid, relayShareBps: 0 },
      { ...valid, uptimeBonusBps: 5_001 },
      { ...valid, treasuryShareBps: 101 },
      { ...valid, relayShareBps: 9_001 },
      { ...valid, minAttestations: 0 },
      { ...valid, minAttestations: 33 },
      { ...valid, submissionWindow: 0 },
      { ...valid, submissionWindow: 169 },
    ]) {
      await viem.assertions.revertWithCustomError(p.rewards.write.setParams([bad]), p.rewards, "InvalidParams");
    }
    await viem.assertions.revertWithCustomError(
      p.rewards.write.setParams([valid], { account: payer.account }),
      p.rewards,
      "AccessControlUnauthorizedAccount",
    );
  });

  it("refuses zero addresses and an out-of-range epoch at deployment", async () => {
    const params = await p.rewards.read.params();
    const admin = p.deployer.account.address;
    const zero = "0x0000000000000000000000000000000000000000";
    const deploy = (a: Address, length: bigint) =>
      viem.deployContract("EpochRewards", [p.token.address, p.credit.address, p.registry.address, a, params, length]);
    await viem.assertions.revertWithCustomError(deploy(zero, 60n), p.rewards, "ZeroAddress");
    await viem.assertions.revertWithCustomError(deploy(admin, 5n), p.rewards, "InvalidEpochLength");
  });
});

/**
 * The payment attacks of the "payments a relay can rely on" issue, each played by a hostile payer,
 * operator or thief beside honest relays that follow the documented protocol: a relay serves a
 * payer only against a lock landed on-chain for it, and submits the payer's latest cumulative
 * receipt after each epoch. Every test prints what the attacker spent and got back and what each
 * honest relay was paid, and asserts that the attacker did not gain and honest relays were paid.
 */
import assert from "node:assert/strict";
import { before, beforeEach, describe, it } from "node:test";
import { type Address, decodeErrorResult, getAddress, type Hex, type LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  type SignedAttestation,
  signLockRequest,
  signReceipt,
  signUptime,
  sortAttestations,
} from "@x0tta6bl4/relayer/accounting/receipts";
import {
  authorizeKey,
  buyCredit,
  connect,
  deployProtocol,
  EPOCH,
  fund,
  GB,
  keysHashOf,
  lockFor,
  MIN_STAKE,
  type Protocol,
  region,
  registerRelayer,
  signerConsent,
  type Wallet,
  warpToEpoch,
  X0T,
} from "../helpers/protocol.js";

const CELL = 1_000; // bytes per cell in these tests
const fmt = (wei: bigint) => `${(Number(wei) / 1e18).toFixed(4)} X0T`;

interface Relay {
  wallet: Wallet;
  address: Address;
  signer: LocalAccount;
}

describe("payment attacks", async () => {
  const connection = await connect();
  const { viem, networkHelpers } = connection;
  let p: Protocol;
  let honest: Relay[];
  let colluder: Relay;
  let restore: () => Promise<void>;

  before(async () => {
    p = await deployProtocol(connection);
    honest = [];
    for (const wallet of p.wallets.slice(3, 6)) {
      honest.push({ wallet, address: getAddress(wallet.account.address), signer: await registerRelayer(p, wallet) });
    }
    const wallet = p.wallets[6]!;
    colluder = { wallet, address: getAddress(wallet.account.address), signer: await registerRelayer(p, wallet) };
    const snapshot = await networkHelpers.takeSnapshot();
    restore = () => snapshot.restore();
  });
  beforeEach(async () => restore());

  const epochNow = () => p.rewards.read.currentEpoch();
  const receipt = (key: LocalAccount, relayer: Address, epoch: bigint, cells: bigint, bytes: bigint) =>
    signReceipt(key, p.receiptDomain, { relayer, epoch, cells, bytes });
  async function submit(relay: Relay, epoch: bigint, receipts: Awaited<ReturnType<typeof receipt>>[]) {
    const hash = await p.rewards.write.submitReceipts([relay.address, epoch, receipts], {
      account: relay.wallet.account,
    });
    const { blockHash } = await p.publicClient.getTransactionReceipt({ hash });
    const rejected = await p.rewards.getEvents.ReceiptRejected({}, { blockHash });
    return rejected.map(
      (e) => decodeErrorResult({ abi: [...p.rewards.abi, ...p.credit.abi], data: e.args.reason! }).errorName,
    );
  }
  async function claim(relay: Relay, epochs: bigint[]): Promise<bigint> {
    const before = await p.token.read.balanceOf([relay.address]);
    await p.rewards.write.claim([relay.address, epochs]);
    return (await p.token.read.balanceOf([relay.address])) - before;
  }
  const attest = async (relay: Address, epoch: bigint, from: LocalAccount[]): Promise<SignedAttestation[]> =>
    sortAttestations(
      await Promise.all(
        from.map((s) =>
          signUptime(s, p.receiptDomain, {
            relayer: relay,
            epoch,
            probes: 7_200,
            answered: 7_199,
            measurements: keysHashOf(`log-${s.address}`),
          }),
        ),
      ),
    );

  it("free ride by refund: a payer that signs its own relay a 10 GB receipt cannot unpay 3 honest hops", async () => {
    const payer = p.wallets[2]!;
    const key = await buyCredit(p, payer, 10n * X0T); // 10 GB
    const e = await epochNow();
    await warpToEpoch(connection, p, e + 1n);
    // Honest protocol: the payer locks a third of its credit for each hop before it is served.
    const perHop = (10n * GB) / 3n; // 10 GB through 3 hops: a third to each
    for (const r of honest) await lockFor(p, payer, r.address, perHop, e + 1n);
    // Seconds before e+1 ends, the payer signs its own relay a 10 GB receipt dated e and tries to
    // lock for it and release the honest locks: nothing is free any more.
    const refund = await receipt(key, colluder.address, e, (10n * GB) / BigInt(CELL), 10n * GB);
    const selfReject = await submit(colluder, e, [refund]);
    assert.deepEqual(selfReject, ["InsufficientCredit"], "no lock for the colluder: its receipt pays nothing");
    await viem.assertions.revertWithCustomError(
      p.credit.write.lock([colluder.address, GB, e + 1n], { account: payer.account }),
      p.credit,
      "InsufficientCredit",
    );
    await viem.assertions.revertWithCustomError(
      p.credit.write.releaseLock([payer.account.address, honest[0]!.address]),
      p.credit,
      "LockNotReleasable",
    );
    // At e+2 the three honest receipts are paid in full.
    const cells = (10n * GB) / BigInt(CELL);
    const honestReceipts = await Promise.all(honest.map((r) => receipt(key, r.address, e + 1n, cells, perHop)));
    await warpToEpoch(connection, p, e + 2n);
    for (const [i, r] of honest.entries()) assert.deepEqual(await submit(r, e + 1n, [honestReceipts[i]!]), []);
    await warpToEpoch(connection, p, e + 3n);
    const paid: bigint[] = [];
    for (const r of honest) paid.push(await claim(r, [e + 1n]));
    const value = (X0T * perHop) / GB; // what the payer paid for one hop's third
    for (const got of paid) assert.equal(got, (value * 9_000n) / 10_000n, "each honest hop gets 90% of its third");
    console.log(
      `    colluder spent 10 X0T, got back 0; honest hops paid ${paid.map(fmt).join(", ")} (90% of 3.3333 each)`,
    );
  });

  it("stolen key: the thief locks at most the key's cap for its relay; revocation stops its locks and later receipts at once; honest locks stay payable", async () => {
    const owner = p.wallets[2]!;
    const cap = 1n * GB;
    const stolen = await buyCredit(p, owner, 10n * X0T, cap);
    const e = await epochNow();
    await lockFor(p, owner, honest[0]!.address, 2n * GB, e + 1n); // the owner's own circuit
    const nonceOf = (n: bigint) => n;
    const request = (bytes: bigint, nonce: bigint, expires = e + 1n) =>
      signLockRequest(stolen, p.creditDomain, {
        relayer: colluder.address,
        bytes,
        expiresEpoch: expires,
        nonce: nonceOf(nonce),
      });
    const opened = async (reqs: Awaited<ReturnType<typeof request>>[]) => {
      const hash = await p.credit.write.openLocks([reqs], { account: colluder.wallet.account });
      const { blockHash } = await p.publicClient.getTransactionReceipt({ hash });
      const rejected = await p.credit.getEvents.LockRejected({}, { blockHash });
      return rejected.map((r) => decodeErrorResult({ abi: p.credit.abi, data: r.args.reason! }).errorName);
    };
    // The thief: 1 GB passes the cap, the next byte of the same epoch does not; a replay neither.
    const first = await request(cap, 1n);
    assert.deepEqual(await opened([first, await request(1n, 2n)]), ["KeyCapExceeded"]);
    assert.deepEqual(await opened([first]), ["NonceUsed"]);
    // The owner notices and revokes: the next request is refused at once, even in the same epoch.
    await p.credit.write.revokeClientKey([stolen.address], { account: owner.account });
    await warpToEpoch(connection, p, e + 1n);
    assert.deepEqual(await opened([await request(cap, 3n, e + 2n)]), ["KeyRevoked"]);
    // A receipt the thief signs for a later epoch than the revocation's pays nothing.
    const late = await receipt(stolen, colluder.address, e + 1n, 3_000_000n, 3n * GB);
    // Receipts signed before (or after) the revocation still pay the locks relays served against.
    const cells = (2n * GB) / BigInt(CELL);
    const honestReceipt = await receipt(stolen, honest[0]!.address, e, cells, 2n * GB);
    const thiefReceipt = await receipt(stolen, colluder.address, e, cells, 2n * GB);
    await warpToEpoch(connection, p, e + 1n, 30);
    assert.deepEqual(await submit(honest[0]!, e, [honestReceipt]), []);
    assert.deepEqual(await submit(colluder, e, [thiefReceipt]), []);
    await warpToEpoch(connection, p, e + 2n, 30);
    assert.deepEqual(await submit(colluder, e + 1n, [late]), ["KeyRevoked"]);
    const honestPaid = await claim(honest[0]!, [e]);
    const thiefGot = await claim(colluder, [e]);
    assert.equal(honestPaid, (2n * X0T * 9_000n) / 10_000n);
    assert.equal(thiefGot, (1n * X0T * 9_000n) / 10_000n, "the thief gets 90% of one cap, nothing more");
    const free = await p.credit.read.creditOf([owner.account.address]);
    assert.equal(free[0], 7n * GB, "the owner keeps everything the thief could not lock");
    console.log(
      `    thief got ${fmt(thiefGot)} (cap 1 GB, then revoked); honest relay paid ${fmt(honestPaid)}; owner keeps 7 GB`,
    );
  });

  it("wash trading loses 10% (1% with its own relays' uptime votes) and never adds to supply", async () => {
    // The colluder runs three relays registered before the epoch; two attest the third.
    const helpers: Relay[] = [honest[1]!, honest[2]!]; // stand-ins for the colluder's other relays
    const wash = p.wallets[7]!;
    const key = await buyCredit(p, wash, 100n * X0T);
    const e = await epochNow();
    await warpToEpoch(connection, p, e + 1n);
    await lockFor(p, wash, colluder.address, 100n * GB, e + 1n);
    const supplyBefore = await p.token.read.totalSupply();
    const r = await receipt(key, colluder.address, e + 1n, (100n * GB) / BigInt(CELL), 100n * GB);
    await warpToEpoch(connection, p, e + 2n);
    assert.deepEqual(await submit(colluder, e + 1n, [r]), []);
    await p.rewards.write.submitUptime(
      [
        colluder.address,
        e + 1n,
        await attest(
          colluder.address,
          e + 1n,
          helpers.map((h) => h.signer),
        ),
      ],
      { account: colluder.wallet.account },
    );
    await warpToEpoch(connection, p, e + 3n);
    const got = await claim(colluder, [e + 1n]);
    const supplyAfter = await p.token.read.totalSupply();
    assert.equal(got, 99n * X0T, "99% with the uptime bonus");
    assert.ok(got < 100n * X0T, "strictly less than spent");
    assert.ok(supplyAfter <= supplyBefore, "no new supply");
    console.log(
      `    spent 100 X0T, got back ${fmt(got)} (loss ${fmt(100n * X0T - got)}); supply change ${fmt(supplyAfter - supplyBefore)}; treasury +1 X0T`,
    );
  });

  it("at the default numbers the uptime bonus (90% -> 99%), the pool (10,000 X0T) and rewardPerCell each act", async () => {
    const [a, b] = honest;
    const e = await epochNow();
    await warpToEpoch(connection, p, e + 1n);
    // Two payers of 6,000 X0T each: 5,400 + 5,940 earned > the 10,000 X0T pool.
    const payers = [p.wallets[7]!, p.wallets[8]!];
    const keys = [];
    for (const [i, payer] of payers.entries()) {
      keys.push(await buyCredit(p, payer, 6_000n * X0T));
      await lockFor(p, payer, [a!, b!][i]!.address, 6_000n * GB, e + 1n);
    }
    const cells = (6_000n * GB) / BigInt(CELL);
    const ra = await receipt(keys[0]!, a!.address, e + 1n, cells, 6_000n * GB);
    const rb = await receipt(keys[1]!, b!.address, e + 1n, cells, 6_000n * GB);
    // A third payer over-pays 1 cell with 1 GB: rewardPerCell (0.0001 X0T) caps that receipt.
    const c = honest[2]!;
    const third = p.wallets[9]!;
    const k3 = await buyCredit(p, third, 1n * X0T);
    await lockFor(p, third, c.address, 1n * GB, e + 1n);
    const rc = await receipt(k3, c.address, e + 1n, 1n, 1n * GB);
    await warpToEpoch(connection, p, e + 2n);
    await submit(a!, e + 1n, [ra]);
    await submit(b!, e + 1n, [rb]);
    await submit(c, e + 1n, [rc]);
    await p.rewards.write.submitUptime([b!.address, e + 1n, await attest(b!.address, e + 1n, [a!.signer, c.signer])], {
      account: b!.wallet.account,
    });
    const accA = await p.rewards.read.relayerEpoch([e + 1n, a!.address]);
    const accB = await p.rewards.read.relayerEpoch([e + 1n, b!.address]);
    const accC = await p.rewards.read.relayerEpoch([e + 1n, c.address]);
    assert.equal(accA.base, 5_400n * X0T, "90% without the bonus");
    assert.equal(accB.boosted, 5_940n * X0T, "99% with it");
    assert.equal(accC.base, X0T / 10_000n, "one cell at 0.0001 X0T, not 90% of 1 X0T");
    await warpToEpoch(connection, p, e + 3n);
    const got = [await claim(a!, [e + 1n]), await claim(b!, [e + 1n])];
    const total = got[0]! + got[1]! + (await claim(c, [e + 1n]));
    assert.ok(total <= 10_000n * X0T, `minted ${fmt(total)} from a 10,000 X0T pool`);
    assert.ok(got[1]! > got[0]!, "the attested relay earns 10% more of the pool");
    console.log(
      `    pool 10,000 X0T, earned 11,340.0001: paid ${got.map(fmt).join(", ")} (pro rata); rewardPerCell capped 1 cell at 0.0001`,
    );
  });

  it("raising the submission window never re-opens a claimed epoch (minted stays within the pool)", async () => {
    const payer = p.wallets[7]!;
    const key = await buyCredit(p, payer, 20_000n * X0T);
    const e = await epochNow();
    await warpToEpoch(connection, p, e + 1n);
    await lockFor(p, payer, honest[0]!.address, 12_000n * GB, e + 1n);
    await lockFor(p, payer, honest[1]!.address, 5_000n * GB, e + 3n);
    const cells = (12_000n * GB) / BigInt(CELL);
    const first = await receipt(key, honest[0]!.address, e + 1n, cells, 12_000n * GB);
    await warpToEpoch(connection, p, e + 2n);
    await submit(honest[0]!, e + 1n, [first]);
    await warpToEpoch(connection, p, e + 3n);
    const minted = await claim(honest[0]!, [e + 1n]);
    // Governance raises the window to 5 epochs; a late receipt for the claimed epoch stays out.
    const params = await p.rewards.read.params();
    await p.rewards.write.setParams([{ ...params, submissionWindow: 5 }]);
    await warpToEpoch(connection, p, e + 4n);
    const late = await receipt(key, honest[1]!.address, e + 1n, cells, 5_000n * GB);
    await viem.assertions.revertWithCustomError(submit(honest[1]!, e + 1n, [late]), p.rewards, "EpochNotOpen");
    assert.equal(await claim(honest[0]!, [e + 1n]), 0n, "no second claim");
    assert.equal(minted, 10_000n * X0T);
    const [, startE2] = await p.rewards.read.epochInfo([e + 2n]);
    const [, startE6] = await p.rewards.read.epochInfo([e + 6n]);
    const len = BigInt(EPOCH);
    assert.equal((await p.rewards.read.receiptsClosed([e + 1n]))[1], startE2 + len, "e+1 keeps its 1-epoch window");
    assert.equal((await p.rewards.read.receiptsClosed([e + 5n]))[1], startE6 + 5n * len, "later epochs take 5");
    console.log(
      `    minted ${fmt(minted)} from a 10,000 X0T pool; after the window change: late receipt refused, no second claim`,
    );
  });

  it("relayer liveness: a refused receipt pays after a top-up, a lower one never blocks a higher one, a minStake raise strands nothing", async () => {
    const payer = p.wallets[7]!;
    const key = await buyCredit(p, payer, 10n * X0T);
    const r = honest[0]!;
    const e = await epochNow();
    await lockFor(p, payer, r.address, 1n * GB, e + 2n);
    const r2 = await receipt(key, r.address, e, 2_000_000n, 2n * GB); // served 2 GB, lock holds 1
    const r1 = await receipt(key, r.address, e, 1_000_000n, 1n * GB);
    await warpToEpoch(connection, p, e + 1n);
    // Governance raises minStake by 1 wei during the window: e's receipts still go in.
    await p.registry.write.setMinStake([MIN_STAKE + 1n]);
    assert.deepEqual(await submit(r, e, [r2]), []); // pays the 1 GB the lock holds
    assert.deepEqual(await submit(r, e, [r2]), ["InsufficientCredit"], "refused for now, slot not burned");
    await lockFor(p, payer, r.address, 1n * GB, e + 2n); // top-up
    assert.deepEqual(await submit(r, e, [r1, r2]), ["NothingNewToPay"], "the older receipt is ignored, the newer pays");
    assert.equal((await p.credit.read.channelOf([key.address, r.address])).bytesPaid, 2n * GB);
    assert.equal((await p.credit.read.lockOf([payer.account.address, r.address])).bytesLeft, 0n);
    await warpToEpoch(connection, p, e + 2n);
    const got = await claim(r, [e]);
    assert.equal(got, (2n * X0T * 9_000n) / 10_000n);
    console.log(
      `    2 GB served against a 1 GB lock, topped up, paid in full: ${fmt(got)}; minStake +1 wei stranded nothing`,
    );
  });

  it("two devices of one payer: each key's cumulative receipts are paid on their own channel", async () => {
    const payer = p.wallets[7]!;
    const laptop = await buyCredit(p, payer, 4n * X0T);
    const phone = await authorizeKey(p, payer);
    const r = honest[0]!;
    const e = await epochNow();
    await lockFor(p, payer, r.address, 2n * GB, e);
    const receipts = [
      await receipt(laptop, r.address, e, 1_000_000n, 1n * GB),
      await receipt(phone, r.address, e, 1_000_000n, 1n * GB),
    ];
    await warpToEpoch(connection, p, e + 1n);
    assert.deepEqual(await submit(r, e, receipts), []);
    assert.equal((await p.credit.read.lockOf([payer.account.address, r.address])).bytesLeft, 0n, "both GB paid");
    await warpToEpoch(connection, p, e + 2n);
    assert.equal(await claim(r, [e]), (2n * X0T * 9_000n) / 10_000n);
  });

  it("shortening the epoch length strands no epoch already begun: its window stays in its own epochs' length", async () => {
    const payer = p.wallets[7]!;
    const key = await buyCredit(p, payer, 10n * X0T);
    const r = honest[0]!;
    await p.rewards.write.setEpochLength([3_600n]);
    const e = (await epochNow()) + 1n; // an hour-long epoch
    await warpToEpoch(connection, p, e);
    await lockFor(p, payer, r.address, 5n * GB, e);
    const served = await receipt(key, r.address, e, 5_000_000n, 5n * GB);
    await p.rewards.write.setEpochLength([60n]); // from e+1 on: one-minute epochs
    // Under a window counted in the new epochs, e's receipts would close a minute after e; they
    // close an hour after (one epoch of e's own length), and the lock cannot be released before.
    const [, endOfE] = await p.rewards.read.epochInfo([e + 1n]);
    assert.deepEqual(await p.rewards.read.receiptsClosed([e]), [false, endOfE + 3_600n]);
    await networkHelpers.time.increaseTo(endOfE + 1_800n);
    await viem.assertions.revertWithCustomError(
      p.credit.write.releaseLock([payer.account.address, r.address]),
      p.credit,
      "LockNotReleasable",
    );
    assert.deepEqual(await submit(r, e, [served]), [], "30 minutes and 30 short epochs later, still paid");
    assert.equal((await p.credit.read.lockOf([payer.account.address, r.address])).bytesLeft, 0n);
  });

  it("registry: keys hash, endpoint and signer are unique, and a signer cannot be squatted without its consent", async () => {
    const victim = p.wallets[8]!;
    const attacker = p.wallets[9]!;
    const victimSigner = privateKeyToAccount(generatePrivateKey());
    await fund(p, attacker.account.address, 2n * MIN_STAKE);
    await p.token.write.approve([p.registry.address, 2n * MIN_STAKE], { account: attacker.account });
    const reg = (endpoint: string, keys: Hex, signer: Address, consent: Hex) =>
      p.registry.write.register([endpoint, region("DE"), keys, signer, consent, MIN_STAKE], {
        account: attacker.account,
      });
    const honestRecord = await p.registry.read.getNode([honest[0]!.address]);
    const mine = privateKeyToAccount(generatePrivateKey());
    const myConsent = await signerConsent(p, mine, attacker.account.address);
    await viem.assertions.revertWithCustomError(
      reg("evil:1", honestRecord.keysHash, mine.address, myConsent),
      p.registry,
      "KeysHashInUse",
    );
    await viem.assertions.revertWithCustomError(
      reg(honestRecord.endpoint, keysHashOf("e"), mine.address, myConsent),
      p.registry,
      "EndpointInUse",
    );
    await viem.assertions.revertWithCustomError(
      reg(honestRecord.endpoint.toUpperCase(), keysHashOf("e"), mine.address, myConsent),
      p.registry,
      "InvalidEndpoint",
    );
    // Squatting the victim's pending signer: no consent, or a consent the signer gave someone else.
    const consentToVictim = await signerConsent(p, victimSigner, victim.account.address);
    await viem.assertions.revertWithCustomError(
      reg("evil:2", keysHashOf("s"), victimSigner.address, myConsent),
      p.registry,
      "InvalidSignerConsent",
    );
    await viem.assertions.revertWithCustomError(
      reg("evil:3", keysHashOf("t"), victimSigner.address, consentToVictim),
      p.registry,
      "InvalidSignerConsent",
    );
    // The victim registers with its signer as planned.
    await fund(p, victim.account.address, MIN_STAKE);
    await p.token.write.approve([p.registry.address, MIN_STAKE], { account: victim.account });
    await p.registry.write.register(
      ["victim.example:9001", region("NL"), keysHashOf("v"), victimSigner.address, consentToVictim, MIN_STAKE],
      {
        account: victim.account,
      },
    );
    assert.equal(await p.registry.read.operatorOf([victimSigner.address]), getAddress(victim.account.address));
    assert.equal(await p.registry.read.keysOwner([keysHashOf("v")]), getAddress(victim.account.address));
    assert.equal(await p.registry.read.endpointOwner(["victim.example:9001"]), getAddress(victim.account.address));
  });
});

/**
 * The payment gate against payers who try to get more than the payment guarantee's bound, beside
 * honest payers, on the in-process chain (real ChannelReader, real SQLite store): an account that
 * spreads its traffic over several client keys, keys met for the first time, and a flood of
 * hellos with random keys that would grow the gate's memory.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { before, beforeEach, describe, it } from "node:test";
import { type Address, getAddress, type Hex, type LocalAccount, zeroAddress } from "viem";
import { CELL_PRICE_BYTES, type GateChain, PaymentGate } from "@x0tta6bl4/relayer/accounting/gate";
import { signReceipt, verifyReceipt } from "@x0tta6bl4/relayer/accounting/receipts";
import { AccountingStore } from "@x0tta6bl4/relayer/accounting/store";
import { ChannelReader } from "@x0tta6bl4/relayer/chain/reader";
import { settleOnce } from "@x0tta6bl4/relayer/chain/settlement";
import { PayStopReason } from "../../relayer/src/wire/payment.ts";
import {
  authorizeKey,
  buyCredit,
  connect,
  deployProtocol,
  lockFor,
  type Protocol,
  registerRelayer,
  type Wallet,
  warpToEpoch,
  X0T,
  settlementClients,
} from "../helpers/protocol.js";

const PER_CELL = CELL_PRICE_BYTES;
const LOCK_CELLS = 100n;
const ALLOWANCE_CELLS = 10n;
const SLACK_CELLS = 64n;
const PRE_HELLO_CELLS = 10n;

describe("payment gate against multi-key accounts and key floods", async () => {
  const connection = await connect();
  const { networkHelpers } = connection;
  let p: Protocol;
  let relay: Wallet;
  let relayer: Address;
  let honest: LocalAccount;
  let attacker: Wallet;
  let attackerKeys: LocalAccount[];
  let restore: () => Promise<void>;

  before(async () => {
    p = await deployProtocol(connection);
    relay = p.wallets[3]!;
    relayer = getAddress(relay.account.address);
    await registerRelayer(p, relay);
    honest = await buyCredit(p, p.wallets[4]!, 10n * X0T);
    attacker = p.wallets[5]!;
    attackerKeys = [
      await buyCredit(p, attacker, 10n * X0T),
      await authorizeKey(p, attacker),
      await authorizeKey(p, attacker),
    ];
    const snapshot = await networkHelpers.takeSnapshot();
    restore = () => snapshot.restore();
  });
  beforeEach(async () => restore());

  function gateOn(chain: GateChain, options: { maxKeys?: number } = {}) {
    const store = new AccountingStore(":memory:");
    const gate = new PaymentGate({
      chain,
      store,
      verify: (epoch, r) => verifyReceipt(p.receiptDomain, relayer, epoch, r),
      allowanceBytes: ALLOWANCE_CELLS * PER_CELL,
      preHelloCells: PRE_HELLO_CELLS,
      slackCells: SLACK_CELLS,
      slackBytes: SLACK_CELLS * PER_CELL,
      ...options,
    });
    return { gate, store };
  }
  const reader = () =>
    new ChannelReader(
      p.publicClient as never,
      { credit: p.credit.address, rewards: p.rewards.address, relayer },
      { ttlMs: 0 },
    );
  /** A receipt for everything the relay counted for `key`: what a payer that keeps up signs. */
  const receiptFor = (g: PaymentGate, key: LocalAccount, epoch: bigint) => {
    const c = g.counted(key.address);
    return signReceipt(key, p.receiptDomain, { relayer, epoch, cells: c.cells, bytes: c.bytes });
  };

  /**
   * The attacker carries cells round-robin on one circuit per key (ids 11, 12, …), signing each key
   * a receipt every `receiptEvery` cells (0: never), until every circuit is refused; the honest
   * payer carries a cell on circuit 1 every round and keeps up with its receipts. Returns the
   * attacker's cells served.
   */
  async function race(g: PaymentGate, epoch: bigint, receiptEvery: bigint) {
    const live = new Map(attackerKeys.map((k, i) => [11 + i, k]));
    const sinceReceipt = new Map<number, bigint>();
    let served = 0n;
    let honestServed = 0;
    while (live.size > 0) {
      for (const [circuit, key] of live) {
        const verdict = g.cell(circuit);
        if (!verdict.serve) {
          live.delete(circuit);
          continue;
        }
        served++;
        const since = (sinceReceipt.get(circuit) ?? 0n) + 1n;
        sinceReceipt.set(circuit, since);
        if (receiptEvery > 0n && since >= receiptEvery) {
          sinceReceipt.set(circuit, 0n);
          const v = await g.receipt(circuit, epoch, await receiptFor(g, key, epoch));
          if (!v.serve) live.delete(circuit);
        }
      }
      assert.deepEqual(g.cell(1), { serve: true }, "the honest payer beside it is served");
      if (++honestServed % 32 === 0)
        assert.deepEqual(await g.receipt(1, epoch, await receiptFor(g, honest, epoch)), { serve: true });
    }
    return served;
  }

  async function openHonest(g: PaymentGate, epoch: bigint, lockCells = 1_000n) {
    await lockFor(p, p.wallets[4]!, relayer, lockCells * PER_CELL, epoch + 1n);
    g.open(1);
    assert.deepEqual(await g.hello(1, honest.address), { serve: true });
  }

  it("an account with three keys gets one lock and one allowance at a relay, however it spreads its traffic", async () => {
    const { gate: g } = gateOn(reader());
    const epoch = await p.rewards.read.currentEpoch();
    await openHonest(g, epoch);
    await lockFor(p, attacker, relayer, LOCK_CELLS * PER_CELL, epoch + 1n);
    for (const [i, key] of attackerKeys.entries()) {
      g.open(11 + i);
      assert.deepEqual(await g.hello(11 + i, key.address), { serve: true });
    }
    // It signs every key's receipts (so the slack never binds) and tries to ride the lock thrice.
    const served = await race(g, epoch, 16n);
    console.log(`    three keys, receipts kept up: ${served} cells served (lock + allowance: 110; per key it was 330)`);
    assert.equal(served, LOCK_CELLS + ALLOWANCE_CELLS, "the lock plus one allowance, for all its keys together");
    // A new circuit with any of its keys is refused at its hello, until it tops up.
    g.open(20);
    assert.deepEqual(await g.hello(20, attackerKeys[0]!.address), { serve: false, reason: PayStopReason.lockShort });
    // Everything it was served is covered by its receipts; the lock pays at most 100 cells of them.
    const receipted = attackerKeys.reduce((sum, k) => sum + g.counted(k.address).bytes, 0n);
    assert.ok(receipted - LOCK_CELLS * PER_CELL <= ALLOWANCE_CELLS * PER_CELL + 3n * PER_CELL);
  });

  it("without receipts, all of an account's keys together are carried one receipt interval (the slack)", async () => {
    const { gate: g } = gateOn(reader());
    const epoch = await p.rewards.read.currentEpoch();
    await openHonest(g, epoch);
    await lockFor(p, attacker, relayer, LOCK_CELLS * PER_CELL, epoch + 1n);
    for (const [i, key] of attackerKeys.entries()) {
      g.open(11 + i);
      await g.hello(11 + i, key.address);
    }
    const served = await race(g, epoch, 0n);
    console.log(`    three keys, no receipts: ${served} cells served (slack: 64; per key it was 192)`);
    assert.equal(served, SLACK_CELLS);
  });

  it("cells carried while new keys are first read come from one budget for the relay, and are charged to the account after", async () => {
    const { gate: g } = gateOn(reader());
    const epoch = await p.rewards.read.currentEpoch();
    await openHonest(g, epoch);
    await lockFor(p, attacker, relayer, LOCK_CELLS * PER_CELL, epoch + 1n);
    // The hellos go out and the cells follow at once, before the relay could read the keys.
    const hellos = attackerKeys.map((key, i) => {
      g.open(11 + i);
      return g.hello(11 + i, key.address);
    });
    let served = 0n;
    for (const [i] of attackerKeys.entries()) for (let n = 0; n < 10_000 && g.cell(11 + i).serve; n++) served++;
    console.log(`    three new keys, cells before their reads: ${served} cells served (3 x 10 + 64)`);
    assert.equal(served, 3n * PRE_HELLO_CELLS + SLACK_CELLS, "each circuit's anonymous cells, then one shared budget");
    // Once read, the account owes all of it: more than one receipt interval, so it is stopped.
    for (const verdict of await Promise.all(hellos))
      assert.deepEqual(verdict, { serve: false, reason: PayStopReason.noPayment });
    const counted = attackerKeys.reduce((sum, k) => sum + g.counted(k.address).cells, 0n);
    assert.equal(counted, served + 3n, "every cell carried (and each circuit's refused one) is the account's");
    assert.deepEqual(g.cell(1), { serve: true }, "the honest payer, read long before, is not touched");
  });

  it("an honest account with two devices is not stopped when a settlement of one device's receipts shrinks the lock", async () => {
    const { gate: g, store } = gateOn(reader());
    const [phone, laptop] = attackerKeys as [LocalAccount, LocalAccount];
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, attacker, relayer, 300n * PER_CELL, epoch + 2n);
    for (const [i, key] of [phone, laptop].entries()) {
      g.open(11 + i);
      await g.hello(11 + i, key.address);
      for (let half = 0; half < 2; half++) {
        for (let n = 0; n < 50; n++) assert.deepEqual(g.cell(11 + i), { serve: true });
        assert.deepEqual(await g.receipt(11 + i, epoch, await receiptFor(g, key, epoch)), { serve: true });
      }
    }
    // The next epoch: the relay settles both devices' receipts (200 cells paid from the lock).
    await warpToEpoch(connection, p, epoch + 1n);
    const clients = settlementClients(p, relay);
    assert.equal((await settleOnce(store, clients, relayer)).submitted[0]?.paid, 2);
    // The phone's next receipt shows the smaller lock; the laptop's paid count here is older. The
    // gate reads the laptop again before it believes the smaller lock: 100 + 10 cells are left.
    assert.deepEqual(await g.receipt(11, epoch + 1n, await receiptFor(g, phone, epoch + 1n)), { serve: true });
    for (let n = 0; n < 60; n++) assert.deepEqual(g.cell(11), { serve: true });
    assert.deepEqual(await g.receipt(11, epoch + 1n, await receiptFor(g, phone, epoch + 1n)), { serve: true });
    for (let n = 0; n < 50; n++) assert.deepEqual(g.cell(11), { serve: true }, `cell ${n} after the settlement`);
    assert.deepEqual(g.cell(11), { serve: false, reason: PayStopReason.lockShort });
  });

  it("100,000 hellos with random keys leave the gate's memory bounded; an honest payer mid-download is not touched, and a dropped key loses the relay nothing", async () => {
    // The chain for the keys this test authorised; random keys are answered as the contract
    // answers them (no account) without an RPC call each, checked on a sample below. The epoch is
    // cached, as a relay's reader does (the test's reader reads everything afresh).
    const real = reader();
    const epochs = new ChannelReader(
      p.publicClient as never,
      { credit: p.credit.address, rewards: p.rewards.address, relayer },
      { ttlMs: 60_000 },
    );
    const authorised = new Set([honest, ...attackerKeys].map((k) => k.address.toLowerCase()));
    const chain: GateChain = {
      channel: (key) =>
        authorised.has(key.toLowerCase())
          ? real.channel(key)
          : Promise.resolve({ account: zeroAddress, bytesLeft: 0n, bytesPaid: 0n, expiresEpoch: 0n, stale: false }),
      currentEpoch: (options) => epochs.currentEpoch(options),
      invalidate: (key) => real.invalidate(key),
    };
    const MAX_KEYS = 1_000;
    const { gate: g, store } = gateOn(chain, { maxKeys: MAX_KEYS });
    const epoch = await p.rewards.read.currentEpoch();
    await openHonest(g, epoch, 10_000n);
    // A second payer downloads, signs its last receipt, and leaves before the flood.
    const leaver = attackerKeys[0]!;
    await lockFor(p, attacker, relayer, 1_000n * PER_CELL, epoch + 1n);
    g.open(2);
    await g.hello(2, leaver.address);
    for (let n = 0; n < 50; n++) g.cell(2);
    assert.deepEqual(await g.receipt(2, epoch, await receiptFor(g, leaver, epoch)), { serve: true });
    for (let n = 0; n < 20; n++) g.cell(2); // 20 cells its next receipt will cover
    g.close(2);

    const sample: Hex[] = [];
    let id = 1_000;
    const open: number[] = [];
    for (let i = 0; i < 100_000; i++) {
      const stranger = `0x${randomBytes(20).toString("hex")}` as Address;
      if (i % 5_000 === 0) sample.push(stranger);
      g.open(++id);
      assert.deepEqual(await g.hello(id, stranger), { serve: false, reason: PayStopReason.unknownKey });
      // Most flood circuits are torn down at once; some stay open (their keys cannot be dropped).
      if (i % 10_000 === 0) open.push(id);
      else g.close(id);
      if (i % 100 === 0) {
        for (let n = 0; n < 4; n++) assert.deepEqual(g.cell(1), { serve: true }, "the download goes on");
        if (i % 1_600 === 0)
          assert.deepEqual(await g.receipt(1, epoch, await receiptFor(g, honest, epoch)), { serve: true });
      }
    }
    const size = g.size;
    console.log(
      `    after 100,000 random hellos: ${size.keys} keys, ${size.accounts} accounts, ${size.circuits} circuits`,
    );
    assert.ok(size.keys <= MAX_KEYS, `${size.keys} keys held, at most ${MAX_KEYS}`);
    assert.ok(size.accounts <= 2);
    assert.equal(size.circuits, 1 + open.length, "the honest circuit and the flood circuits still open");
    for (const stranger of sample) assert.equal((await real.channel(stranger)).account, zeroAddress);
    assert.deepEqual(g.counted(honest.address).cells, 4_000n, "the honest payer's count is whole");
    assert.deepEqual(await g.receipt(1, epoch, await receiptFor(g, honest, epoch)), { serve: true });

    // The leaver was dropped: its count resumes from its kept receipt, and its next receipt, which
    // covers the 20 cells the relay forgot, is accepted and kept for settlement.
    assert.deepEqual(g.counted(leaver.address), { cells: 0n, bytes: 0n }, "dropped from memory");
    g.open(3);
    assert.deepEqual(await g.hello(3, leaver.address), { serve: true });
    assert.equal(g.counted(leaver.address).cells, 50n, "resumed from the store");
    for (let n = 0; n < 10; n++) g.cell(3);
    const payerSide = await signReceipt(leaver, p.receiptDomain, {
      relayer,
      epoch,
      cells: 80n,
      bytes: 80n * PER_CELL,
    });
    assert.deepEqual(await g.receipt(3, epoch, payerSide), { serve: true });
    const kept = store.queued(epoch).find((r) => r.key.toLowerCase() === leaver.address.toLowerCase());
    assert.equal(kept?.bytes_, 80n * PER_CELL, "the relay will be paid for all 80 cells");
  });
});

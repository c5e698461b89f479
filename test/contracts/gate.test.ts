/**
 * A relay's payment gate against the in-process chain (real ChannelReader, real SQLite store):
 * which payers it serves, when it stops, and which receipts it keeps for settlement.
 */
import assert from "node:assert/strict";
import { before, beforeEach, describe, it } from "node:test";
import { type Address, getAddress, type LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { ADOPTED_CELLS_MS, CELL_PRICE_BYTES, PaymentGate } from "@x0tta6bl4/relayer/accounting/gate";
import { signReceipt, verifyReceipt } from "@x0tta6bl4/relayer/accounting/receipts";
import { AccountingStore } from "@x0tta6bl4/relayer/accounting/store";
import { ChannelReader } from "@x0tta6bl4/relayer/chain/reader";
import { PayStopReason } from "../../relayer/src/wire/payment.ts";
import {
  buyCredit,
  connect,
  deployProtocol,
  lockFor,
  type Protocol,
  registerRelayer,
  type Wallet,
  X0T,
  payerChannels,
} from "../helpers/protocol.js";

const PER_CELL = CELL_PRICE_BYTES; // what a cell owes each hop

describe("payment gate of a relay", async () => {
  const connection = await connect();
  const { networkHelpers } = connection;
  let p: Protocol;
  let relayer: Address;
  let payer: Wallet;
  let key: LocalAccount;
  let restore: () => Promise<void>;

  before(async () => {
    p = await deployProtocol(connection);
    const relay = p.wallets[3]!;
    relayer = getAddress(relay.account.address);
    await registerRelayer(p, relay);
    payer = p.wallets[4]!;
    key = await buyCredit(p, payer, 10n * X0T);
    const snapshot = await networkHelpers.takeSnapshot();
    restore = () => snapshot.restore();
  });
  beforeEach(async () => restore());

  function gate(store = new AccountingStore(":memory:"), now?: () => number) {
    const reader = new ChannelReader(
      p.publicClient as never,
      { credit: p.credit.address, rewards: p.rewards.address, relayer },
      { ttlMs: 0 },
    );
    return {
      store,
      gate: new PaymentGate({
        chain: reader,
        store,
        verify: (epoch, r) => verifyReceipt(p.receiptDomain, relayer, epoch, r),
        allowanceBytes: 10n * PER_CELL,
        preHelloCells: 10n,
        slackCells: 64n,
        slackBytes: 64n * PER_CELL,
        now,
      }),
    };
  }
  const carry = (g: PaymentGate, circuit: number, cells: number) => {
    let last = g.cell(circuit);
    for (let i = 1; i < cells && last.serve; i++) last = g.cell(circuit);
    return last;
  };

  it("serves an anonymous circuit within the allowance, then stops it: no payment", async () => {
    const { gate: g } = gate();
    g.open(1);
    assert.deepEqual(carry(g, 1, 10), { serve: true });
    assert.deepEqual(g.cell(1), { serve: false, reason: PayStopReason.noPayment });
  });

  it("serves a payer up to its lock plus the allowance, keeps its receipts, stops when the lock is short", async () => {
    const { gate: g, store } = gate();
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, payer, relayer, 100n * PER_CELL, epoch + 1n);
    g.open(7);
    assert.deepEqual(carry(g, 7, 5), { serve: true }); // before the hello: the build's few cells
    assert.deepEqual(await g.hello(7, key.address), { serve: true });
    const receiptNow = async () => {
      const counted = g.counted(key.address);
      return signReceipt(key, p.receiptDomain, { relayer, epoch, cells: counted.cells, bytes: counted.bytes });
    };
    assert.deepEqual(carry(g, 7, 45), { serve: true });
    assert.deepEqual(await g.receipt(7, epoch, await receiptNow()), { serve: true });
    assert.deepEqual(carry(g, 7, 50), { serve: true });
    assert.equal(g.counted(key.address).cells, 100n);
    assert.deepEqual(await g.receipt(7, epoch, await receiptNow()), { serve: true });
    assert.equal(store.queued(epoch).length, 1, "the newest receipt kept for settlement");
    assert.deepEqual(carry(g, 7, 10), { serve: true }); // the allowance beyond the lock
    assert.deepEqual(g.cell(7), { serve: false, reason: PayStopReason.lockShort });
  });

  it("stops a payer whose receipts do not keep up: one receipt interval (the slack) past the last, no more", async () => {
    const { gate: g } = gate();
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, payer, relayer, 1_000n * PER_CELL, epoch + 1n);
    g.open(3);
    await g.hello(3, key.address);
    assert.deepEqual(carry(g, 3, 64), { serve: true }, "a lock alone is no payment: 64 cells of slack");
    assert.deepEqual(g.cell(3), { serve: false, reason: PayStopReason.noPayment });
    // A receipt that catches up mends it, on a new circuit.
    const c = g.counted(key.address);
    g.open(4);
    await g.hello(4, key.address);
    const good = await signReceipt(key, p.receiptDomain, { relayer, epoch, cells: c.cells, bytes: c.bytes });
    assert.deepEqual(await g.receipt(4, epoch, good), { serve: true });
    assert.deepEqual(carry(g, 4, 60), { serve: true });
  });

  it("stops a payer whose receipt under-states, over-claims, is forged, misdated or from an unknown key", async () => {
    const { gate: g } = gate();
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, payer, relayer, 1_000n * PER_CELL, epoch + 1n);
    g.open(1);
    await g.hello(1, key.address);
    const sign = (cells: bigint, bytes: bigint, at = epoch, by = key) =>
      signReceipt(by, p.receiptDomain, { relayer, epoch: at, cells, bytes });
    carry(g, 1, 60);
    const first = g.counted(key.address);
    assert.deepEqual(await g.receipt(1, epoch, await sign(first.cells, first.bytes)), { serve: true });
    assert.deepEqual(carry(g, 1, 60), { serve: true });
    const c = g.counted(key.address); // 120 cells, 60 of them receipted
    assert.deepEqual(await g.receipt(1, epoch, await sign(c.cells - 100n, c.bytes)), {
      serve: false,
      reason: PayStopReason.badReceipt,
    });
    assert.deepEqual(await g.receipt(1, epoch, await sign(c.cells + 65n, c.bytes + 65n * PER_CELL)), {
      serve: false,
      reason: PayStopReason.badReceipt,
    });
    assert.equal(g.counted(key.address).cells, c.cells, "an over-claim beyond the slack is not taken");
    assert.deepEqual(await g.receipt(1, epoch, await sign(c.cells, c.bytes - 100n * PER_CELL)), {
      serve: false,
      reason: PayStopReason.badReceipt,
    });
    const forged = {
      ...(await sign(c.cells, c.bytes, epoch, privateKeyToAccount(generatePrivateKey()))),
      key: key.address,
    };
    assert.deepEqual(await g.receipt(1, epoch, forged), { serve: false, reason: PayStopReason.badReceipt });
    assert.deepEqual(await g.receipt(1, epoch + 5n, await sign(c.cells, c.bytes, epoch + 5n)), {
      serve: false,
      reason: PayStopReason.badReceipt,
    });
    // A good receipt lifts the stop.
    assert.deepEqual(await g.receipt(1, epoch, await sign(c.cells, c.bytes)), { serve: true });
    // A key nobody authorised.
    const stranger = privateKeyToAccount(generatePrivateKey());
    g.open(2);
    assert.deepEqual(await g.hello(2, stranger.address), { serve: false, reason: PayStopReason.unknownKey });
  });

  it("takes a payer's word for cells in flight when a circuit died, up to the slack, and charges it for them", async () => {
    const { gate: g, store } = gate();
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, payer, relayer, 1_000n * PER_CELL, epoch + 1n);
    g.open(1);
    await g.hello(1, key.address);
    assert.deepEqual(carry(g, 1, 40), { serve: true });
    // The payer sent 12 more cells on a circuit that died before they got here: its receipt is
    // ahead of this relay's count.
    g.close(1);
    g.open(2);
    await g.hello(2, key.address);
    const c = g.counted(key.address);
    const ahead = await signReceipt(key, p.receiptDomain, {
      relayer,
      epoch,
      cells: c.cells + 12n,
      bytes: c.bytes + 12n * PER_CELL,
    });
    assert.deepEqual(await g.receipt(2, epoch, ahead), { serve: true });
    assert.deepEqual(g.counted(key.address), { cells: c.cells + 12n, bytes: c.bytes + 12n * PER_CELL });
    assert.equal(store.queued(epoch)[0]?.cells, c.cells + 12n, "kept for settlement: the payer pays for them");
    // The next receipt, in step with the raised count, is accepted too: new cells on the
    // receipt's circuit count.
    assert.deepEqual(carry(g, 2, 10), { serve: true });
    const next = g.counted(key.address);
    assert.equal(next.cells, c.cells + 22n);
    const inStep = await signReceipt(key, p.receiptDomain, { relayer, epoch, cells: next.cells, bytes: next.bytes });
    assert.deepEqual(await g.receipt(2, epoch, inStep), { serve: true });
  });

  it("does not count twice cells a receipt claimed that were late, not lost: on a slower circuit, behind a hello", async () => {
    let clock = 1_000_000;
    const { gate: g } = gate(undefined, () => clock);
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, payer, relayer, 1_000n * PER_CELL, epoch + 1n);
    const receiptFor = (cells: bigint, bytes: bigint) =>
      signReceipt(key, p.receiptDomain, { relayer, epoch, cells, bytes });
    g.open(1);
    g.open(2);
    await g.hello(1, key.address);
    await g.hello(2, key.address);
    g.open(3); // its hello is on its way
    assert.deepEqual(carry(g, 1, 30), { serve: true });
    // The payer sent 8 cells on circuit 2 (held by a slow middle relay) and 5 on circuit 3 (whose
    // hello is being checked), then its receipt on circuit 1.
    const c = g.counted(key.address);
    assert.deepEqual(await g.receipt(1, epoch, await receiptFor(c.cells + 13n, c.bytes + 13n * PER_CELL)), {
      serve: true,
    });
    assert.equal(g.counted(key.address).cells, c.cells + 13n);
    assert.deepEqual(carry(g, 2, 8), { serve: true });
    assert.deepEqual(carry(g, 3, 5), { serve: true });
    await g.hello(3, key.address);
    assert.deepEqual(g.counted(key.address), { cells: c.cells + 13n, bytes: c.bytes + 13n * PER_CELL }, "not twice");
    // Past them, cells count again, on every circuit.
    assert.deepEqual(carry(g, 2, 2), { serve: true });
    assert.deepEqual(carry(g, 1, 1), { serve: true });
    assert.equal(g.counted(key.address).cells, c.cells + 16n);
    // A circuit opened after the receipt never draws on what it claimed, nor does any once the
    // window for late cells (ADOPTED_CELLS_MS) has passed.
    assert.deepEqual(await g.receipt(1, epoch, await receiptFor(c.cells + 20n, c.bytes + 20n * PER_CELL)), {
      serve: true,
    });
    g.open(4);
    await g.hello(4, key.address);
    assert.deepEqual(carry(g, 4, 3), { serve: true });
    assert.equal(g.counted(key.address).cells, c.cells + 23n, "new circuit: counted");
    assert.deepEqual(carry(g, 2, 1), { serve: true });
    assert.equal(g.counted(key.address).cells, c.cells + 23n, "an older circuit's late cell: claimed already");
    clock += ADOPTED_CELLS_MS + 1;
    assert.deepEqual(carry(g, 2, 2), { serve: true });
    assert.equal(g.counted(key.address).cells, c.cells + 25n, "too late to be one of them: counted");
  });

  it("a payer's node and a relay count alike: the lock the payer signs lands, every receipt it signs is accepted", async () => {
    const { gate: g, store } = gate();
    const epoch = await p.rewards.read.currentEpoch();
    let clock = 0;
    const payerSide = payerChannels(p, key, epoch, { everyCells: 64n, everyMs: 5_000, now: () => clock });
    // The payer signs a lock request for the relay; the relay lands it (paying the gas).
    const request = await payerSide.lockRequest(relayer, 1_000n * PER_CELL, epoch + 1n);
    await p.credit.write.openLocks([[{ ...request, relayer, bytes_: request.bytes }]]);
    assert.equal((await p.credit.read.lockOf([payer.account.address, relayer])).bytesLeft, 1_000n * PER_CELL);
    g.open(3);
    assert.deepEqual(await g.hello(3, payerSide.key), { serve: true });
    let receipts = 0;
    for (let i = 0; i < 500; i++) {
      assert.deepEqual(g.cell(3), { serve: true });
      if (payerSide.carried(relayer)) {
        const r = await payerSide.receipt(relayer);
        assert.deepEqual(await g.receipt(3, r.epoch, { ...r, bytes_: r.bytes }), { serve: true });
        receipts++;
      }
      if (i === 250) clock += 6_000; // the time trigger fires too
    }
    assert.deepEqual(payerSide.counted(relayer), g.counted(payerSide.key));
    assert.ok(receipts >= 7, `${receipts} receipts for 500 cells at one per 64 cells`);
    assert.equal(store.queued(epoch).length, 1, "the newest receipt per key is kept");
  });
});

/**
 * The payment gate around a PAY_HELLO whose signature is being checked and whose chain read is slow
 * (real ChannelReader on the in-process chain, released by the test): a download that started with
 * the circuit is not cut by the check, a refused hello falls back to the pre-hello budget, and a
 * receipt accepted while the hello's chain read was under way is not forgotten when it returns.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { type Address, getAddress, type LocalAccount } from "viem";
import { CELL_PRICE_BYTES, PaymentGate, PENDING_HELLO_CELLS } from "@x0tta6bl4/relayer/accounting/gate";
import { signReceipt, verifyReceipt } from "@x0tta6bl4/relayer/accounting/receipts";
import { AccountingStore } from "@x0tta6bl4/relayer/accounting/store";
import { ChannelReader } from "@x0tta6bl4/relayer/chain/reader";
import { PayStopReason } from "../../relayer/src/wire/payment.ts";
import {
  buyCredit,
  connect,
  deployProtocol,
  GB,
  lockFor,
  type Protocol,
  registerRelayer,
  X0T,
} from "../helpers/protocol.js";

const SLACK = 64n;

describe("payment gate while a hello is checked", async () => {
  const connection = await connect();
  let p: Protocol;
  let relayer: Address;
  let key: LocalAccount;

  before(async () => {
    p = await deployProtocol(connection);
    const relay = p.wallets[3]!;
    relayer = getAddress(relay.account.address);
    await registerRelayer(p, relay);
    key = await buyCredit(p, p.wallets[4]!, 10n * X0T);
    await lockFor(p, p.wallets[4]!, relayer, GB, (await p.rewards.read.currentEpoch()) + 2n);
  });

  /** A gate whose first channel read waits for `release()` (the hello's), the rest go straight through. */
  function slowGate() {
    const reader = new ChannelReader(
      p.publicClient as never,
      { credit: p.credit.address, rewards: p.rewards.address, relayer },
      { ttlMs: 0 },
    );
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    const gate = new PaymentGate({
      chain: {
        channel: async (k) => {
          if (first) {
            first = false;
            await held;
          }
          return reader.channel(k);
        },
        currentEpoch: (o) => reader.currentEpoch(o),
      },
      store: new AccountingStore(":memory:"),
      verify: (epoch, r) => verifyReceipt(p.receiptDomain, relayer, epoch, r),
      allowanceBytes: 16n * 1024n * 1024n,
      slackCells: SLACK,
      slackBytes: SLACK * CELL_PRICE_BYTES,
    });
    return { gate, release };
  }

  it("gives a circuit the pending budget while its hello is checked, and only the pre-hello budget after a refusal", () => {
    const { gate } = slowGate();
    gate.open(1);
    gate.helloPending(1);
    for (let i = 0n; i < 32n + PENDING_HELLO_CELLS; i++) assert.equal(gate.cell(1).serve, true, `cell ${i}`);
    assert.deepEqual(gate.cell(1), { serve: false, reason: PayStopReason.noPayment });
    gate.open(2);
    gate.helloPending(2);
    for (let i = 0; i < 100; i++) gate.cell(2);
    gate.helloRefused(2); // the signature did not check out
    assert.deepEqual(gate.cell(2), { serve: false, reason: PayStopReason.noPayment });
  });

  it("keeps a receipt accepted while the hello's chain read was under way", async () => {
    const { gate, release } = slowGate();
    gate.open(1);
    const hello = gate.hello(1, key.address); // its chain read waits
    for (let i = 0; i < 40; i++) assert.equal(gate.cell(1).serve, true);
    const epoch = await p.rewards.read.currentEpoch();
    // The payer counted the 40 cells (the relay charges them to the account once it knows it).
    const receipt = await signReceipt(key, p.receiptDomain, {
      relayer,
      epoch,
      cells: 40n,
      bytes: 40n * CELL_PRICE_BYTES,
    });
    assert.deepEqual(await gate.receipt(1, epoch, receipt), { serve: true });
    release();
    assert.deepEqual(await hello, { serve: true });
    // Served up to one slack past the receipt: the read that returned late did not reset it.
    for (let i = 0n; i < SLACK; i++) assert.equal(gate.cell(1).serve, true, `cell ${i} past the receipt`);
    assert.deepEqual(gate.cell(1), { serve: false, reason: PayStopReason.noPayment });
  });
});

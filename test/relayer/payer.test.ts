/**
 * The payer's side of the in-band channels (PayerChannels), alone: when a receipt or a lock request
 * is due, and what happens to one that was signed for a circuit that closed before it could leave.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { PayerChannels } from "../../relayer/src/accounting/payer.ts";
import { bandwidthCreditDomain, epochRewardsDomain } from "../../relayer/src/accounting/receipts.ts";

const RELAY = "0x00000000000000000000000000000000000000aa";
const CONTRACT = "0x00000000000000000000000000000000000000cc";

function channels(locks?: { bytes: bigint; epochs: bigint }) {
  let clock = 1_000_000;
  const payer = new PayerChannels({
    key: privateKeyToAccount(generatePrivateKey()),
    receiptDomain: epochRewardsDomain(31337, CONTRACT),
    creditDomain: bandwidthCreditDomain(31337, CONTRACT),
    epoch: () => 5n,
    everyCells: 10n,
    everyMs: 1_000,
    now: () => clock,
    locks,
  });
  return { payer, tick: (ms: number) => (clock += ms) };
}

describe("payer channels", () => {
  it("never makes a receipt due, nor an idle one, for its own messages", async () => {
    const { payer, tick } = channels();
    for (let i = 0; i < 4; i++) payer.carried(RELAY);
    await payer.receipt(RELAY);
    tick(5_000);
    assert.equal(payer.carried(RELAY, true), false, "a receipt's own cell, long after the last");
    assert.equal(payer.carried(RELAY, true), false);
    assert.equal(payer.unsigned(RELAY), false, "only its own cells since: no idle receipt");
    assert.equal(payer.carried(RELAY), true, "a cell of traffic after the interval: due");
    assert.equal(payer.unsigned(RELAY), true);
    const r = await payer.receipt(RELAY);
    assert.equal(r.cells, 7n, "the next receipt covers the own cells too");
  });

  it("takes back a receipt that never left: its cells are uncovered again, unless a later one was signed", async () => {
    const { payer } = channels();
    for (let i = 0; i < 3; i++) payer.carried(RELAY);
    const lost = await payer.receipt(RELAY);
    assert.equal(payer.unsigned(RELAY), false);
    payer.unsent(RELAY, lost.cells);
    assert.equal(payer.unsigned(RELAY), true);
    const sent = await payer.receipt(RELAY);
    assert.equal(sent.cells, 3n);
    payer.unsent(RELAY, 2n); // an older one: the newer stands
    assert.equal(payer.unsigned(RELAY), false);
  });

  it("asks again for a lock whose request never left, and not for one that did", async () => {
    const { payer } = channels({ bytes: 1_000n, epochs: 2n });
    const lost = await payer.lockDue(RELAY);
    assert.ok(lost);
    assert.equal(await payer.lockDue(RELAY), undefined, "asked already");
    payer.lockUnsent(RELAY, lost.nonce);
    const again = await payer.lockDue(RELAY);
    assert.ok(again && again.nonce !== lost.nonce, "asked again, with a new nonce");
    payer.lockUnsent(RELAY, lost.nonce); // stale: the newer request stands
    assert.equal(await payer.lockDue(RELAY), undefined);
  });
});

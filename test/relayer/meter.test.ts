import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ChannelMeter, judgeReceipt, owedForCell } from "../../relayer/src/accounting/meter.ts";

const KEY = "0x00000000000000000000000000000000000000aa";
const ZERO = "0x0000000000000000000000000000000000000000";

describe("channel meter", () => {
  it("charges each hop its share of a cell, rounding up, and refuses nonsense", () => {
    assert.equal(owedForCell(16_384, 1), 16_384n);
    assert.equal(owedForCell(16_384, 3), 5_462n);
    assert.equal(owedForCell(0, 3), 0n);
    assert.throws(() => owedForCell(-1, 3), RangeError);
    assert.throws(() => owedForCell(100, 0), RangeError);
    assert.throws(() => owedForCell(100, 9), RangeError);
    assert.throws(() => owedForCell(1.5, 2), RangeError);
  });

  it("counts the same totals on both sides of a channel, whatever the cells and their order", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 16_384 }), fc.integer({ min: 1, max: 5 }))), (cells) => {
        const payer = new ChannelMeter();
        const relay = new ChannelMeter();
        for (const [body, hops] of cells) payer.add("relay", owedForCell(body, hops));
        for (const [body, hops] of [...cells].reverse()) relay.add(KEY, owedForCell(body, hops));
        assert.deepEqual(payer.get("relay"), relay.get(KEY));
        assert.equal(payer.get("relay").cells, BigInt(cells.length));
      }),
    );
  });

  it("resumes from remembered counts and never goes backwards", () => {
    const meter = new ChannelMeter();
    meter.resume("r", { cells: 10n, bytes: 1_000n });
    meter.resume("r", { cells: 5n, bytes: 500n });
    assert.deepEqual(meter.add("r", owedForCell(300, 3)), { cells: 11n, bytes: 1_100n });
    assert.deepEqual(meter.get("other"), { cells: 0n, bytes: 0n });
  });
});

describe("a relay's judgement of a receipt", () => {
  const chain = { account: KEY, bytesLeft: 1_000n, bytesPaid: 0n, expiresEpoch: 10n } as const;
  const base = {
    counted: { cells: 10n, bytes: 1_000n },
    chain,
    epoch: 5n,
    slackCells: 1n,
    slackBytes: 100n,
    allowanceBytes: 0n,
  };

  it("accepts a receipt within its slack and covered by the lock", () => {
    assert.deepEqual(judgeReceipt({ ...base, receipt: { cells: 10n, bytes: 1_000n } }), { ok: true, unpaid: 1_000n });
    assert.deepEqual(judgeReceipt({ ...base, receipt: { cells: 9n, bytes: 900n } }), { ok: true, unpaid: 1_000n });
  });

  it("refuses an unknown key, more cells than carried, too few bytes, a short or expired lock", () => {
    const verdict = (over: Partial<Parameters<typeof judgeReceipt>[0]>) =>
      judgeReceipt({ ...base, receipt: { cells: 10n, bytes: 1_000n }, ...over });
    assert.deepEqual(verdict({ chain: { ...chain, account: ZERO } }), { ok: false, reason: "unknown-key" });
    assert.deepEqual(verdict({ receipt: { cells: 11n, bytes: 1_100n } }), { ok: false, reason: "overclaims-cells" });
    assert.deepEqual(verdict({ receipt: { cells: 8n, bytes: 1_000n } }), { ok: false, reason: "underreports-cells" });
    assert.deepEqual(verdict({ receipt: { cells: 10n, bytes: 899n } }), { ok: false, reason: "underpays" });
    assert.deepEqual(verdict({ chain: { ...chain, bytesLeft: 999n } }), { ok: false, reason: "lock-short" });
    assert.deepEqual(verdict({ chain: { ...chain, bytesLeft: 999n }, allowanceBytes: 1n }), {
      ok: true,
      unpaid: 1_000n,
    });
    assert.deepEqual(verdict({ epoch: 11n }), { ok: false, reason: "lock-expired" });
    // Past its expiry a lock covers nothing new, however much it holds; the allowance bridges the
    // time until the payer's renewed lock lands, and no more.
    assert.deepEqual(verdict({ epoch: 11n, chain: { ...chain, bytesLeft: 10_000n }, allowanceBytes: 999n }), {
      ok: false,
      reason: "lock-expired",
    });
    assert.deepEqual(verdict({ epoch: 11n, allowanceBytes: 1_000n }), { ok: true, unpaid: 1_000n });
    assert.deepEqual(verdict({ epoch: 11n, chain: { ...chain, bytesPaid: 1_000n, bytesLeft: 0n } }), {
      ok: true,
      unpaid: 0n,
    });
  });
});

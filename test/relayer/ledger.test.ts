import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Address } from "viem";
import { type KeyEntry, over, PayerLedger } from "../../relayer/src/accounting/ledger.ts";

const address = (i: number) => `0x${i.toString(16).padStart(40, "0")}` as Address;
const ACCOUNTS = ["0xa1", "0xa2", "0xa3"].map((a) => a.padEnd(42, "0"));

/** Every account's sums, recomputed from its keys. */
function sums(keys: Iterable<KeyEntry>) {
  const by = new Map<string, { unpaid: bigint; unreceipted: bigint }>();
  for (const k of keys) {
    if (!k.account) continue;
    const s = by.get(k.account.id) ?? { unpaid: 0n, unreceipted: 0n };
    s.unpaid += over(k.bytes, k.paid);
    s.unreceipted += over(k.bytes, k.receipted);
    by.set(k.account.id, s);
  }
  return by;
}

const op = fc.oneof(
  fc.record({ t: fc.constant("add" as const), key: fc.nat(30), resume: fc.option(fc.bigInt(0n, 5_000n)) }),
  fc.record({ t: fc.constant("assign" as const), key: fc.nat(30), account: fc.nat(2) }),
  fc.record({ t: fc.constant("count" as const), key: fc.nat(30), owed: fc.bigInt(0n, 400n), times: fc.nat(20) }),
  fc.record({ t: fc.constant("paid" as const), key: fc.nat(30), to: fc.bigInt(0n, 10_000n) }),
  fc.record({ t: fc.constant("receipted" as const), key: fc.nat(30), to: fc.bigInt(0n, 10_000n) }),
  fc.record({ t: fc.constant("counts" as const), key: fc.nat(30), add: fc.bigInt(0n, 3_000n) }),
  fc.record({ t: fc.constant("pin" as const), key: fc.nat(30), on: fc.boolean() }),
);

describe("payer ledger", () => {
  it("keeps each account's sums equal to the sums over its keys, whatever the order of counts, reads and drops", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(op, { maxLength: 200 }), (maxKeys, ops) => {
        const ledger = new PayerLedger({ maxKeys, allowanceBytes: 100n });
        const held = new Map<string, KeyEntry>();
        for (const o of ops) {
          const id = address(o.key).toLowerCase();
          let key = ledger.get(id);
          if (o.t === "add") {
            if (key) continue;
            key = ledger.add(address(o.key), o.resume === null ? undefined : { cells: 1n, bytes: o.resume });
            held.set(id, key);
            continue;
          }
          if (!key) continue;
          if (o.t === "assign") ledger.assign(key, ACCOUNTS[o.account]!);
          else if (o.t === "count" && key.account)
            for (let i = 0; i < o.times; i++) ledger.count(key, key.account, o.owed);
          else if (o.t === "paid") ledger.setPaid(key, o.to);
          else if (o.t === "receipted") ledger.setReceipted(key, o.to);
          else if (o.t === "counts") ledger.setCounts(key, key.cells + 1n, key.bytes + o.add);
          else if (o.t === "pin") key.circuits = o.on ? 1 : 0;
        }
        // What is held: at most maxKeys, unless more keys are in use; no key in use was dropped.
        const live = [...held.values()].filter((k) => ledger.get(k.id) === k);
        const pinned = [...held.values()].filter((k) => k.circuits > 0);
        for (const k of pinned) assert.equal(ledger.get(k.id), k, "a key with an open circuit is never dropped");
        assert.ok(live.length <= Math.max(maxKeys, pinned.length));
        assert.equal(ledger.size.keys, live.length);
        // The sums, against a recount; every held account has a held key.
        const expected = sums(live);
        const accounts = new Set(live.flatMap((k) => (k.account ? [k.account] : [])));
        assert.equal(ledger.size.accounts, accounts.size);
        for (const a of accounts) {
          assert.deepEqual({ unpaid: a.unpaid, unreceipted: a.unreceipted }, expected.get(a.id));
          for (const k of a.keys) assert.equal(ledger.get(k.id), k, "an account lists only held keys");
        }
      }),
      { numRuns: 500 },
    );
  });

  it("drops the least recently used keys first, and moves keys in use to the back", () => {
    const ledger = new PayerLedger({ maxKeys: 3, allowanceBytes: 0n });
    const [a, b] = [ledger.add(address(1)), ledger.add(address(2))];
    ledger.add(address(3));
    a.circuits = 1; // in use: passed over
    ledger.touch(b); // used lately
    ledger.add(address(4)); // drops 3, the least recently used key not in use
    assert.ok(ledger.get(a.id) && ledger.get(b.id) && ledger.get(address(4).toLowerCase()));
    assert.equal(ledger.get(address(3).toLowerCase()), undefined);
    assert.throws(() => new PayerLedger({ maxKeys: 0, allowanceBytes: 0n }), RangeError);
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { toHex } from "viem";
import { ClientKeys, withRecoveredParity } from "../../relayer/src/accounting/client-keys.ts";
import { epochRewardsDomain, signPayHello, signReceipt, verifyReceipt } from "../../relayer/src/accounting/receipts.ts";
import { ProtocolError } from "../../relayer/src/wire/cell.ts";
import {
  decodePayHello,
  decodePayLock,
  decodePayReceipt,
  decodePayStop,
  encodePayHello,
  encodePayLock,
  encodePayReceipt,
  encodePayStop,
  PAY_HELLO_BYTES,
  PAY_LOCK_BYTES,
  PAY_RECEIPT_BYTES,
  PayStopReason,
} from "../../relayer/src/wire/payment.ts";

const hex = (bytes: number) =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((a) => `0x${Buffer.from(a).toString("hex")}` as const);
const uint = (bits: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n });
const address = hex(20);

describe("payment messages on the wire", () => {
  it("round-trip every field at its full range", () => {
    fc.assert(
      fc.property(address, uint(96), uint(64), uint(256), hex(32), hex(32), (key, bytes, epoch, nonce, r, vs) => {
        const lock = { key: key as `0x${string}`, bytes, expiresEpoch: epoch, nonce, r, vs };
        const decodedLock = decodePayLock(encodePayLock(lock));
        assert.equal(decodedLock.key.toLowerCase(), lock.key.toLowerCase());
        assert.deepEqual({ ...decodedLock, key: lock.key }, lock);
        const receipt = { key: key as `0x${string}`, epoch, cells: epoch, bytes, r, vs };
        const decodedReceipt = decodePayReceipt(encodePayReceipt(receipt));
        assert.deepEqual({ ...decodedReceipt, key: receipt.key }, receipt);
      }),
    );
  });

  it("carries a signed receipt that still verifies on the other side", async () => {
    const key = privateKeyToAccount(generatePrivateKey());
    const relayer = privateKeyToAccount(generatePrivateKey()).address;
    const domain = epochRewardsDomain(31337, "0x0000000000000000000000000000000000000001");
    const signed = await signReceipt(key, domain, { relayer, epoch: 9n, cells: 1_000n, bytes: 5_000_000n });
    const wire = encodePayReceipt({ ...signed, epoch: 9n, bytes: signed.bytes_ });
    assert.equal(wire.length, PAY_RECEIPT_BYTES);
    const back = decodePayReceipt(wire);
    assert.equal(await verifyReceipt(domain, relayer, back.epoch, { ...back, bytes_: back.bytes }), true);
    const hello = await signPayHello(key, domain, relayer, Buffer.alloc(32, 7));
    const helloWire = encodePayHello(hello);
    assert.equal(helloWire.length, PAY_HELLO_BYTES);
    assert.deepEqual(decodePayHello(helloWire), hello);
  });

  it("refuses any other length, an unknown stop reason, and out-of-range values", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const data = Buffer.from(bytes);
        if (data.length !== PAY_LOCK_BYTES) assert.throws(() => decodePayLock(data), ProtocolError);
        if (data.length !== PAY_RECEIPT_BYTES) assert.throws(() => decodePayReceipt(data), ProtocolError);
        if (data.length !== PAY_HELLO_BYTES) assert.throws(() => decodePayHello(data), ProtocolError);
      }),
    );
    assert.equal(decodePayStop(encodePayStop(PayStopReason.lockShort)), PayStopReason.lockShort);
    assert.throws(() => decodePayStop(Buffer.from([0])), ProtocolError);
    assert.throws(() => decodePayStop(Buffer.from([1, 2])), ProtocolError);
    const base = {
      key: privateKeyToAccount(generatePrivateKey()).address,
      epoch: 0n,
      cells: 0n,
      r: `0x${"00".repeat(32)}`,
      vs: `0x${"00".repeat(32)}`,
    } as const;
    assert.throws(() => encodePayReceipt({ ...base, bytes: 1n << 96n }), RangeError);
    assert.throws(() => encodePayReceipt({ ...base, bytes: -1n }), RangeError);
    assert.throws(() => encodePayReceipt({ ...base, bytes: 0n, r: "0x00" }), RangeError);
  });

  it("checks a PAY_HELLO against its binding, then verifies receipts natively exactly as recovery would", async () => {
    const key = privateKeyToAccount(generatePrivateKey());
    const other = privateKeyToAccount(generatePrivateKey());
    const relayer = privateKeyToAccount(generatePrivateKey()).address;
    const domain = epochRewardsDomain(84532, "0x00000000000000000000000000000000000000aa");
    const keys = new ClientKeys(domain, relayer);
    const binding = Buffer.alloc(32, 1);
    // A hello for another binding, another relay, or naming someone else's key proves nothing.
    assert.equal(await keys.checkHello(binding, await signPayHello(key, domain, relayer, Buffer.alloc(32, 2))), false);
    assert.equal(await keys.checkHello(binding, await signPayHello(key, domain, other.address, binding)), false);
    assert.equal(
      await keys.checkHello(binding, { ...(await signPayHello(other, domain, relayer, binding)), key: key.address }),
      false,
    );
    assert.equal(await keys.checkHello(binding, await signPayHello(key, domain, relayer, binding)), true);
    await fc.assert(
      fc.asyncProperty(uint(64), uint(64), uint(96), fc.boolean(), async (epoch, cells, bytes, forged) => {
        const signer = forged ? other : key;
        const signed = await signReceipt(signer, domain, { relayer, epoch, cells, bytes });
        const receipt = { ...signed, key: key.address };
        const expected = await verifyReceipt(domain, relayer, epoch, receipt);
        assert.equal(expected, !forged);
        assert.equal(await keys.verifyReceipt(epoch, receipt), expected, "native = recovery");
        assert.equal(await keys.verifyReceipt(epoch + 1n, receipt), false, "another epoch");
        assert.equal(await keys.verifyReceipt(epoch, { ...receipt, cells: cells ^ 1n }), false, "other counts");
      }),
      { numRuns: 40 },
    );
    assert.ok(
      keys.counts.native >= 120 && keys.counts.recovered === 0,
      "every receipt of a known key checked natively",
    );
    // A flipped recovery bit passes the native check (it has no v) and is repaired before submission.
    const good = await signReceipt(key, domain, { relayer, epoch: 3n, cells: 10n, bytes: 10n });
    const flipped = { ...good, vs: toHex(BigInt(good.vs) ^ (1n << 255n), { size: 32 }) };
    assert.equal(await verifyReceipt(domain, relayer, 3n, flipped), false);
    assert.equal(await keys.verifyReceipt(3n, flipped), true);
    assert.deepEqual(await withRecoveredParity(domain, relayer, 3n, flipped), good);
    // High s (the malleable twin OpenZeppelin refuses) is refused here too.
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const s = BigInt(good.vs) & ((1n << 255n) - 1n);
    const twin = { ...good, vs: toHex((n - s) | (((BigInt(good.vs) >> 255n) ^ 1n) << 255n), { size: 32 }) };
    assert.equal(await keys.verifyReceipt(3n, twin), false);
    // A key never seen in a hello is recovered once, then known.
    const fresh = new ClientKeys(domain, relayer);
    assert.equal(await fresh.verifyReceipt(3n, good), true);
    assert.equal(await fresh.verifyReceipt(3n, good), true);
    assert.deepEqual(fresh.counts, { native: 1, recovered: 1 });
  });
});

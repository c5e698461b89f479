import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { epochRewardsDomain, signReceipt, verifyReceipt } from "../../relayer/src/accounting/receipts.ts";
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
    assert.equal(decodePayHello(encodePayHello(key.address)), key.address);
  });

  it("refuses any other length, an unknown stop reason, and out-of-range values", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const data = Buffer.from(bytes);
        if (data.length !== PAY_LOCK_BYTES) assert.throws(() => decodePayLock(data), ProtocolError);
        if (data.length !== PAY_RECEIPT_BYTES) assert.throws(() => decodePayReceipt(data), ProtocolError);
        if (data.length !== 20) assert.throws(() => decodePayHello(data), ProtocolError);
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
});

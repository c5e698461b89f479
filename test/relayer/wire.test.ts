import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseRequest } from "../../relayer/src/socks/parse.ts";
import fc from "fast-check";
import {
  CellCommand,
  FrameReader,
  MAX_CELL_BYTES,
  MAX_FRAME_BYTES,
  ProtocolError,
  decodeCell,
  decodeExtend,
  decodeRelayMessage,
  decodeTarget,
  encodeCellHeader,
  encodeFrameHeader,
  encodeTarget,
} from "../../relayer/src/wire/cell.ts";
import type { Target } from "../../relayer/src/wire/cell.ts";

const RUNS = { numRuns: 300 };

/** Only ProtocolError may escape a decoder fed arbitrary bytes. */
function onlyProtocolErrors(f: () => unknown): void {
  try {
    f();
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
  }
}

describe("frame reader", () => {
  it("returns the same frames however the byte stream is split", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(payloads.flatMap((p) => [encodeFrameHeader(p.length), Buffer.from(p)]));
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const reader = new FrameReader();
          const got: Buffer[] = [];
          let last = 0;
          for (const p of [...points, stream.length]) {
            got.push(...reader.push(stream.subarray(last, p)).map((f) => Buffer.from(f)));
            last = p;
          }
          assert.deepEqual(
            got,
            payloads.map((p) => Buffer.from(p)),
          );
          assert.equal(reader.pending, 0);
        },
      ),
      RUNS,
    );
  });

  it("throws only ProtocolError on arbitrary bytes and never buffers past one frame", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 5000 }), { maxLength: 6 }), (chunks) => {
        const reader = new FrameReader();
        onlyProtocolErrors(() => {
          for (const c of chunks) {
            reader.push(Buffer.from(c));
            assert.ok(reader.pending <= MAX_FRAME_BYTES + 4);
          }
        });
      }),
      RUNS,
    );
  });

  it("refuses a zero or oversized length as soon as the header is in", () => {
    assert.throws(() => new FrameReader().push(Buffer.from([0, 0, 0, 0])), ProtocolError);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(MAX_FRAME_BYTES + 1);
    assert.throws(() => new FrameReader().push(big.subarray(0, 4)), ProtocolError);
    const split = new FrameReader();
    split.push(big.subarray(0, 2));
    assert.throws(() => split.push(big.subarray(2)), ProtocolError);
  });
});

describe("decoders", () => {
  it("cells, relay messages, targets and EXTEND bodies accept or refuse arbitrary bytes, never crash", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4000 }), (bytes) => {
        const b = Buffer.from(bytes);
        onlyProtocolErrors(() => decodeCell(b));
        onlyProtocolErrors(() => decodeRelayMessage(b));
        onlyProtocolErrors(() => decodeTarget(b));
        onlyProtocolErrors(() => decodeExtend(b, { x25519: 32, mlkem: 1184, hello: 2337 }));
      }),
      { numRuns: 1000 },
    );
  });

  it("bounds cells and known commands", () => {
    assert.throws(() => decodeCell(Buffer.alloc(MAX_CELL_BYTES + 1)), ProtocolError);
    assert.throws(() => decodeCell(Buffer.alloc(4)), ProtocolError);
    const unknown = Buffer.concat([encodeCellHeader(1, CellCommand.relay), Buffer.alloc(1)]);
    unknown[4] = 99;
    assert.throws(() => decodeCell(unknown), /unknown cell command/);
    assert.equal(decodeCell(encodeCellHeader(7, CellCommand.destroy)).circuitId, 7);
  });

  it("round-trips every target form", () => {
    const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."));
    const domain = fc.stringMatching(/^[a-z0-9.-]{1,255}$/);
    const target = fc.oneof(
      fc.record({ type: fc.constant("ipv4" as const), host: ipv4, port: fc.integer({ min: 1, max: 65535 }) }),
      fc.record({ type: fc.constant("domain" as const), host: domain, port: fc.integer({ min: 1, max: 65535 }) }),
    );
    fc.assert(
      fc.property(target, (t: Target) => assert.deepEqual(decodeTarget(encodeTarget(t)), { ...t })),
      RUNS,
    );
    for (const host of ["::1", "2001:db8::8:800:200c:417a", "fe80::1", "1:2:3:4:5:6:7:8", "::"]) {
      assert.equal(decodeTarget(encodeTarget({ type: "ipv6", host, port: 80 })).host, host);
    }
    assert.throws(() => decodeTarget(Buffer.from([3, 1, 0x00, 0, 80])), /non-printable/);
    assert.throws(() => decodeTarget(Buffer.from([1, 127, 0, 0, 1, 0, 0])), /port 0/);
  });
  // RFC 1928 ATYP 4 carries 16 bytes; an IPv4-mapped address (RFC 4291 2.5.5.2) is written
  // ::ffff:a.b.c.d by the SOCKS parser (RFC 5952 5). The dotted tail was once parsed as hex groups.
  it("carries IPv4-mapped and dotted-tail IPv6 targets byte for byte", () => {
    const mapped = Buffer.from("00000000000000000000ffff7f000001", "hex");
    const parsed = parseRequest(Buffer.concat([Buffer.from([5, 1, 0, 4]), mapped, Buffer.from([0, 80])]));
    assert.equal(parsed.status, "parsed");
    if (parsed.status !== "parsed") return;
    assert.equal(parsed.value.target.host, "::ffff:127.0.0.1");
    const wire = encodeTarget({ type: "ipv6", host: parsed.value.target.host, port: 80 });
    assert.deepEqual(wire.subarray(1, 17), mapped);
    assert.deepEqual(decodeTarget(wire), { type: "ipv6", host: "::ffff:127.0.0.1", port: 80 });
    const nat64 = encodeTarget({ type: "ipv6", host: "64:ff9b::192.0.2.33", port: 443 });
    assert.equal(nat64.subarray(1, 17).toString("hex"), "0064ff9b0000000000000000c0000221");
    assert.throws(() => encodeTarget({ type: "ipv6", host: "::ffff:1.2.3.4.5", port: 80 }), RangeError);
    assert.throws(() => encodeTarget({ type: "ipv4", host: "1.2.3", port: 80 }), RangeError);
  });
});

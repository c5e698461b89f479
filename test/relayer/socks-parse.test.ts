/**
 * The SOCKS5 parser alone: every branch by example, then properties over arbitrary bytes with a
 * small independent encoder written here.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { StreamReason } from "../../relayer/src/wire/reasons.ts";
import { formatIPv6, parseIPv6 } from "../../relayer/src/exit/address.ts";
import { type ParseResult, parseCredentials, parseGreeting, parseRequest } from "../../relayer/src/socks/parse.ts";

const bytes = (...values: number[]) => Uint8Array.from(values);
const ascii = (text: string) => [...Buffer.from(text, "latin1")];

function encodeGreeting(methods: number[]): Uint8Array {
  return bytes(5, methods.length, ...methods);
}
function encodeCredentials(user: Uint8Array, pass: Uint8Array): Uint8Array {
  return bytes(1, user.length, ...user, pass.length, ...pass);
}
type Addr = { atyp: 1; raw: Uint8Array } | { atyp: 4; raw: Uint8Array } | { atyp: 3; raw: Uint8Array };
function encodeRequest(addr: Addr, port: number, command = 1): Uint8Array {
  const address = addr.atyp === 3 ? [addr.raw.length, ...addr.raw] : [...addr.raw];
  return bytes(5, command, 0, addr.atyp, ...address, port >> 8, port & 0xff);
}

function expectError<T>(result: ParseResult<T>, code: string, reason: number): void {
  assert.equal(result.status, "error", JSON.stringify(result));
  if (result.status !== "error") return;
  assert.equal(result.code, code);
  assert.equal(result.reason, reason);
}

function expectParsed<T>(result: ParseResult<T>, value: T, consumed: number): void {
  assert.deepEqual(result, { status: "parsed", value, consumed });
}

describe("parseGreeting", () => {
  it("waits for the version, the count and every method", () => {
    for (const input of [bytes(), bytes(5), bytes(5, 2), bytes(5, 2, 0)]) {
      assert.deepEqual(parseGreeting(input), { status: "need-more" });
    }
  });
  it("parses methods and leaves pipelined bytes alone", () => {
    expectParsed(parseGreeting(bytes(5, 2, 0, 2, 5, 1)), { methods: [0, 2] }, 4);
  });
  it("refuses a version other than 5 on the first byte", () => {
    expectError(parseGreeting(bytes(4)), "bad-version", StreamReason.generalFailure);
    expectError(parseGreeting(Buffer.from("GET / HTTP/1.1\r\n")), "bad-version", StreamReason.generalFailure);
  });
  it("refuses NMETHODS = 0", () => {
    expectError(parseGreeting(bytes(5, 0)), "no-methods", StreamReason.generalFailure);
  });
  it("accepts 255 methods, the maximum", () => {
    const methods = Array.from({ length: 255 }, (_, i) => i);
    expectParsed(parseGreeting(encodeGreeting(methods)), { methods }, 257);
  });
});

describe("parseCredentials", () => {
  it("parses UTF-8 username and password", () => {
    const encoded = encodeCredentials(Buffer.from("алиса"), Buffer.from("p@ss"));
    expectParsed(
      parseCredentials(Buffer.concat([encoded, bytes(5)])),
      { username: "алиса", password: "p@ss" },
      encoded.length,
    );
  });
  it("waits at every prefix", () => {
    const encoded = encodeCredentials(Buffer.from("u"), Buffer.from("pw"));
    for (let i = 0; i < encoded.length; i++)
      assert.deepEqual(parseCredentials(encoded.subarray(0, i)), { status: "need-more" });
  });
  it("refuses a subnegotiation version other than 1", () => {
    expectError(parseCredentials(bytes(5, 1, 0x61, 1, 0x62)), "bad-auth-version", StreamReason.generalFailure);
  });
  it("refuses empty username or password (RFC 1929: 1..255)", () => {
    expectError(parseCredentials(bytes(1, 0)), "bad-username-length", StreamReason.generalFailure);
    expectError(parseCredentials(bytes(1, 1, 0x61, 0)), "bad-password-length", StreamReason.generalFailure);
  });
  it("refuses bytes that are not UTF-8 rather than merging different usernames", () => {
    expectError(parseCredentials(bytes(1, 1, 0xff, 1, 0x61)), "bad-credentials-encoding", StreamReason.generalFailure);
  });
  it("accepts 255-byte username and password", () => {
    const long = Buffer.alloc(255, 0x61);
    const encoded = encodeCredentials(long, long);
    assert.equal(encoded.length, 513);
    expectParsed(parseCredentials(encoded), { username: "a".repeat(255), password: "a".repeat(255) }, 513);
  });
});

describe("parseRequest", () => {
  it("parses an IPv4 CONNECT", () => {
    const encoded = encodeRequest({ atyp: 1, raw: bytes(93, 184, 216, 34) }, 443);
    expectParsed(parseRequest(encoded), { command: 1, target: { type: "ipv4", host: "93.184.216.34", port: 443 } }, 10);
  });
  it("parses IPv6 into RFC 5952 text", () => {
    const cases: Array<[string, string]> = [
      ["0001:0000:0000:0002:0000:0000:0000:0003", "1:0:0:2::3"],
      ["2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"],
      ["0000:0000:0000:0000:0000:0000:0000:0001", "::1"],
      ["0000:0000:0000:0000:0000:0000:0000:0000", "::"],
      ["2001:0db8:0000:0001:0001:0001:0001:0001", "2001:db8:0:1:1:1:1:1"],
      ["0000:0000:0000:0000:0000:ffff:7f00:0001", "::ffff:127.0.0.1"],
      ["FE80:0000:0000:0000:0000:0000:0000:0000", "fe80::"],
    ];
    for (const [full, canonical] of cases) {
      const raw = Buffer.from(full.replaceAll(":", ""), "hex");
      const result = parseRequest(encodeRequest({ atyp: 4, raw }, 80));
      expectParsed(result, { command: 1, target: { type: "ipv6", host: canonical, port: 80 } }, 22);
    }
  });
  it("parses a domain exactly as sent, leaving optimistic data", () => {
    const encoded = encodeRequest({ atyp: 3, raw: Buffer.from("Example.COM") }, 80);
    const withData = Buffer.concat([encoded, Buffer.from("GET / HTTP/1.0\r\n\r\n")]);
    expectParsed(
      parseRequest(withData),
      { command: 1, target: { type: "domain", host: "Example.COM", port: 80 } },
      encoded.length,
    );
  });
  it("accepts a 255-byte domain", () => {
    const name = "a".repeat(255);
    expectParsed(
      parseRequest(encodeRequest({ atyp: 3, raw: Buffer.from(name) }, 1)),
      { command: 1, target: { type: "domain", host: name, port: 1 } },
      262,
    );
  });
  it("refuses BIND and UDP ASSOCIATE with REP 7 as soon as the command byte arrives", () => {
    expectError(parseRequest(bytes(5, 2)), "bad-command", StreamReason.commandNotSupported);
    expectError(parseRequest(bytes(5, 3, 0, 1)), "bad-command", StreamReason.commandNotSupported);
    expectError(parseRequest(bytes(5, 0)), "bad-command", StreamReason.commandNotSupported);
  });
  it("refuses a wrong version, and RSV other than 0", () => {
    expectError(parseRequest(bytes(4, 1, 0, 1)), "bad-version", StreamReason.generalFailure);
    expectError(parseRequest(bytes(5, 1, 1, 1)), "bad-reserved", StreamReason.generalFailure);
  });
  it("refuses unknown address types with REP 8", () => {
    for (const atyp of [0, 2, 5, 255]) {
      expectError(parseRequest(bytes(5, 1, 0, atyp)), "bad-address-type", StreamReason.addressTypeNotSupported);
    }
  });
  it("refuses empty, NUL, control, space and non-ASCII domains with REP 4", () => {
    expectError(parseRequest(bytes(5, 1, 0, 3, 0)), "bad-domain-length", StreamReason.hostUnreachable);
    for (const name of [ascii("evil.com\0.good.com"), ascii("a\nb"), ascii("a b"), ascii("caf\u00e9"), [0x7f]]) {
      expectError(
        parseRequest(encodeRequest({ atyp: 3, raw: Uint8Array.from(name) }, 80)),
        "bad-domain",
        StreamReason.hostUnreachable,
      );
    }
  });
  it("refuses port 0 with REP 2", () => {
    expectError(
      parseRequest(encodeRequest({ atyp: 1, raw: bytes(1, 2, 3, 4) }, 0)),
      "bad-port",
      StreamReason.notAllowed,
    );
  });
});

// ---- properties ----

const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((raw): Addr => ({ atyp: 1, raw }));
const ipv6 = fc
  .oneof(
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    // Many zero groups, so that compression and its tie rules are really exercised.
    fc.array(fc.constantFrom(0, 0, 0, 1, 0xffff), { minLength: 8, maxLength: 8 }).map((groups) => {
      const raw = new Uint8Array(16);
      groups.forEach((g, i) => raw.set([g >> 8, g & 0xff], 2 * i));
      return raw;
    }),
  )
  .map((raw): Addr => ({ atyp: 4, raw }));
const domain = fc
  .uint8Array({ minLength: 1, maxLength: 255 })
  .map((raw): Addr => ({ atyp: 3, raw: raw.map((b) => 0x21 + (b % 94)) }));
const address = fc.oneof(ipv4, ipv6, domain);
const port = fc.integer({ min: 1, max: 65535 });
const name = fc.uint8Array({ minLength: 1, maxLength: 255 }).map((raw) => Buffer.from(raw.map((b) => 0x20 + (b % 95))));

const validMessages = fc.oneof(
  fc
    .array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 255 })
    .map((m) => ({ bytes: encodeGreeting(m), parse: parseGreeting })),
  fc.tuple(name, name).map(([u, p]) => ({ bytes: encodeCredentials(u, p), parse: parseCredentials })),
  fc.tuple(address, port).map(([a, p]) => ({ bytes: encodeRequest(a, p), parse: parseRequest })),
);

describe("parser properties", () => {
  it("arbitrary bytes never throw and always give need-more, parsed or error", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (input) => {
        for (const parse of [parseGreeting, parseCredentials, parseRequest] as const) {
          const result: ParseResult<unknown> = parse(input);
          assert.ok(["need-more", "parsed", "error"].includes(result.status));
          if (result.status === "parsed") assert.ok(result.consumed > 0 && result.consumed <= input.length);
          if (result.status === "error") assert.ok(result.reason >= 1 && result.reason <= 8);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("every strict prefix of a valid message is need-more", () => {
    fc.assert(
      fc.property(validMessages, ({ bytes: encoded, parse }) => {
        for (let i = 0; i < encoded.length; i++) {
          assert.deepEqual(parse(encoded.subarray(0, i)), { status: "need-more" }, `prefix ${i}`);
        }
        const whole = parse(encoded);
        assert.equal(whole.status, "parsed");
      }),
      { numRuns: 300 },
    );
  });

  it("requests round-trip and trailing bytes change nothing", () => {
    fc.assert(
      fc.property(address, port, fc.uint8Array({ maxLength: 64 }), (addr, p, trailing) => {
        const encoded = encodeRequest(addr, p);
        const result = parseRequest(Buffer.concat([encoded, trailing]));
        assert.equal(result.status, "parsed");
        if (result.status !== "parsed") return;
        assert.equal(result.consumed, encoded.length);
        const { target } = result.value;
        assert.equal(target.port, p);
        if (addr.atyp === 1) assert.equal(target.host, [...addr.raw].join("."));
        if (addr.atyp === 3) assert.equal(target.host, Buffer.from(addr.raw).toString("latin1"));
        if (addr.atyp === 4) {
          assert.deepEqual(parseIPv6(target.host), addr.raw);
          // The WHATWG URL parser also prints RFC 5952 text, except for IPv4-mapped addresses.
          if (!target.host.includes(".")) {
            assert.equal(new URL(`http://[${target.host}]/`).hostname, `[${target.host}]`);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("credentials and greetings round-trip", () => {
    fc.assert(
      fc.property(
        name,
        name,
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 255 }),
        (u, pw, methods) => {
          expectParsed(
            parseCredentials(encodeCredentials(u, pw)),
            { username: u.toString(), password: pw.toString() },
            u.length + pw.length + 3,
          );
          expectParsed(parseGreeting(encodeGreeting(methods)), { methods }, methods.length + 2);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("IPv6 text round-trips through formatIPv6 and parseIPv6", () => {
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        const raw = parseIPv6(text);
        assert.ok(raw, text);
        assert.deepEqual(parseIPv6(formatIPv6(raw)), raw);
      }),
      { numRuns: 1000 },
    );
  });
});

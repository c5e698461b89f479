/**
 * SOCKS5 client messages (RFC 1928 greeting and request, RFC 1929 username/password), parsed by
 * pure functions over the bytes received so far. Each returns "need-more" (a valid prefix: wait),
 * "parsed" with the bytes it used (the rest belongs to the next message or is the application's
 * optimistic data), or "error" with the RFC 1928 REP code the server should answer with.
 * Errors are reported as early as the offending byte arrives, so garbage is never waited on.
 */
import { StreamReason } from "../wire/reasons.ts";
import { type Target, formatIPv4, formatIPv6 } from "../exit/address.ts";

export const SOCKS_VERSION = 0x05;
/** RFC 1929 subnegotiation version. */
export const AUTH_VERSION = 0x01;
export const Method = { noAuth: 0x00, usernamePassword: 0x02, noAcceptable: 0xff } as const;
export const Command = { connect: 0x01, bind: 0x02, udpAssociate: 0x03 } as const;
export const Atyp = { ipv4: 0x01, domain: 0x03, ipv6: 0x04 } as const;

/** Longest messages a client can send, for callers that bound their buffers. */
export const MAX_GREETING = 2 + 255;
export const MAX_AUTH = 3 + 255 + 255;
export const MAX_REQUEST = 4 + 1 + 255 + 2;

export type ParseErrorCode =
  | "bad-version"
  | "no-methods"
  | "bad-auth-version"
  | "bad-username-length"
  | "bad-password-length"
  | "bad-credentials-encoding"
  | "bad-command"
  | "bad-reserved"
  | "bad-address-type"
  | "bad-domain-length"
  | "bad-domain"
  | "bad-port";

export type ParseError = { status: "error"; code: ParseErrorCode; reason: StreamReason; message: string };
export type ParseResult<T> = { status: "need-more" } | { status: "parsed"; value: T; consumed: number } | ParseError;

export type Greeting = { methods: number[] };
export type Credentials = { username: string; password: string };
/** A parsed request; only CONNECT ever parses, every other command is an error. */
export type Request = { command: typeof Command.connect; target: Target };

const NEED_MORE = { status: "need-more" } as const;

/**
 * Bounded cursor over the received bytes: every read says whether the bytes are there, so no
 * parser can index past what arrived.
 */
class Reader {
  readonly #bytes: Uint8Array;
  #offset = 0;
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  get offset(): number {
    return this.#offset;
  }
  u8(): number | undefined {
    if (this.#offset >= this.#bytes.length) return undefined;
    return this.#bytes[this.#offset++];
  }
  u16(): number | undefined {
    if (this.#offset + 2 > this.#bytes.length) return undefined;
    const value = ((this.#bytes[this.#offset] ?? 0) << 8) | (this.#bytes[this.#offset + 1] ?? 0);
    this.#offset += 2;
    return value;
  }
  bytes(length: number): Uint8Array | undefined {
    if (this.#offset + length > this.#bytes.length) return undefined;
    const out = this.#bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }
}

function fail(code: ParseErrorCode, reason: StreamReason, message: string): ParseError {
  return { status: "error", code, reason, message };
}

/** VER NMETHODS METHODS... (RFC 1928 section 3). */
export function parseGreeting(bytes: Uint8Array): ParseResult<Greeting> {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version === undefined) return NEED_MORE;
  if (version !== SOCKS_VERSION) return fail("bad-version", StreamReason.generalFailure, `version ${version}`);
  const count = r.u8();
  if (count === undefined) return NEED_MORE;
  if (count === 0) return fail("no-methods", StreamReason.generalFailure, "greeting lists no methods");
  const methods = r.bytes(count);
  if (methods === undefined) return NEED_MORE;
  return { status: "parsed", value: { methods: [...methods] }, consumed: r.offset };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * VER ULEN UNAME PLEN PASSWD (RFC 1929). Names and passwords are decoded as strict UTF-8: a lossy
 * decoding could map two different usernames to the same string and so merge streams that the
 * application asked to keep on separate circuits.
 */
export function parseCredentials(bytes: Uint8Array): ParseResult<Credentials> {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version === undefined) return NEED_MORE;
  if (version !== AUTH_VERSION) return fail("bad-auth-version", StreamReason.generalFailure, `auth version ${version}`);
  const ulen = r.u8();
  if (ulen === undefined) return NEED_MORE;
  if (ulen === 0) return fail("bad-username-length", StreamReason.generalFailure, "empty username");
  const user = r.bytes(ulen);
  if (user === undefined) return NEED_MORE;
  const plen = r.u8();
  if (plen === undefined) return NEED_MORE;
  if (plen === 0) return fail("bad-password-length", StreamReason.generalFailure, "empty password");
  const pass = r.bytes(plen);
  if (pass === undefined) return NEED_MORE;
  try {
    return {
      status: "parsed",
      value: { username: utf8.decode(user), password: utf8.decode(pass) },
      consumed: r.offset,
    };
  } catch {
    return fail("bad-credentials-encoding", StreamReason.generalFailure, "credentials are not UTF-8");
  }
}

/**
 * VER CMD RSV ATYP DST.ADDR DST.PORT (RFC 1928 section 4). Decisions beyond the RFC:
 * - port 0 is refused with REP 2 (not allowed): nothing listens there, and refusing it at the
 *   entry saves building a circuit to learn that;
 * - a domain must be 1..255 bytes of printable ASCII without spaces (0x21..0x7e): NUL or control
 *   bytes are how names get truncated or smuggled into logs and resolvers, and clients send
 *   internationalised names as punycode. Such a name gets REP 4 (host unreachable), as it
 *   cannot resolve.
 */
export function parseRequest(bytes: Uint8Array): ParseResult<Request> {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version === undefined) return NEED_MORE;
  if (version !== SOCKS_VERSION) return fail("bad-version", StreamReason.generalFailure, `version ${version}`);
  const command = r.u8();
  if (command === undefined) return NEED_MORE;
  if (command !== Command.connect) {
    return fail("bad-command", StreamReason.commandNotSupported, `command ${command} (only CONNECT)`);
  }
  const reserved = r.u8();
  if (reserved === undefined) return NEED_MORE;
  if (reserved !== 0) return fail("bad-reserved", StreamReason.generalFailure, `reserved byte ${reserved}`);
  const atyp = r.u8();
  if (atyp === undefined) return NEED_MORE;
  let target: Omit<Target, "port">;
  if (atyp === Atyp.ipv4) {
    const address = r.bytes(4);
    if (address === undefined) return NEED_MORE;
    target = { type: "ipv4", host: formatIPv4(address) };
  } else if (atyp === Atyp.ipv6) {
    const address = r.bytes(16);
    if (address === undefined) return NEED_MORE;
    target = { type: "ipv6", host: formatIPv6(address) };
  } else if (atyp === Atyp.domain) {
    const length = r.u8();
    if (length === undefined) return NEED_MORE;
    if (length === 0) return fail("bad-domain-length", StreamReason.hostUnreachable, "empty domain name");
    const name = r.bytes(length);
    if (name === undefined) return NEED_MORE;
    if (!name.every((b) => b >= 0x21 && b <= 0x7e)) {
      return fail("bad-domain", StreamReason.hostUnreachable, "domain name has bytes outside printable ASCII");
    }
    target = { type: "domain", host: String.fromCharCode(...name) };
  } else {
    return fail("bad-address-type", StreamReason.addressTypeNotSupported, `address type ${atyp}`);
  }
  const port = r.u16();
  if (port === undefined) return NEED_MORE;
  if (port === 0) return fail("bad-port", StreamReason.notAllowed, "port 0");
  return { status: "parsed", value: { command: Command.connect, target: { ...target, port } }, consumed: r.offset };
}

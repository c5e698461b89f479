/**
 * SOCKS5 server messages. Command replies always have the full RFC 1928 form (10 bytes with an
 * IPv4 BND.ADDR, 22 with IPv6): clients such as curl read exactly that many bytes and report a
 * short reply only as "connection closed", losing the reason we took care to carry.
 */
import { isIPv4, isIPv6 } from "node:net";
import { StreamReason } from "../wire/reasons.ts";
import { parseIPv4, parseIPv6 } from "../exit/address.ts";
import { AUTH_VERSION, Atyp, SOCKS_VERSION } from "./parse.ts";

/** VER METHOD: the method chosen, or 0xff for "no acceptable methods". */
export function methodReply(method: number): Buffer {
  return Buffer.from([SOCKS_VERSION, method]);
}

/** RFC 1929 VER STATUS: 0 is success, anything else is failure (we send 1). */
export function authReply(ok: boolean): Buffer {
  return Buffer.from([AUTH_VERSION, ok ? 0x00 : 0x01]);
}

/**
 * VER REP RSV ATYP BND.ADDR BND.PORT. `bound` is what the exit chose to reveal; without it (or if
 * it is not an IP literal) the reply carries 0.0.0.0:0, which is what clients expect from proxies
 * that do not disclose their outgoing address.
 */
export function commandReply(reason: StreamReason, bound?: { host: string; port: number }): Buffer {
  const port = bound && Number.isInteger(bound.port) && bound.port >= 0 && bound.port <= 65535 ? bound.port : 0;
  const v6 = bound && isIPv6(bound.host) ? parseIPv6(bound.host) : undefined;
  if (v6) {
    const out = Buffer.alloc(22);
    out.set([SOCKS_VERSION, reason, 0x00, Atyp.ipv6], 0);
    out.set(v6, 4);
    out.writeUInt16BE(port, 20);
    return out;
  }
  const v4 = bound && isIPv4(bound.host) ? parseIPv4(bound.host) : undefined;
  const out = Buffer.alloc(10);
  out.set([SOCKS_VERSION, reason, 0x00, Atyp.ipv4], 0);
  if (v4) out.set(v4, 4);
  out.writeUInt16BE(v4 ? port : 0, 8);
  return out;
}

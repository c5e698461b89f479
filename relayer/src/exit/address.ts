/**
 * Targets and IP address text: the one place that turns address bytes into text and back.
 *
 * The SOCKS5 entry and the exit both use these (the entry to print what the application sent, the
 * exit to see the IPv4 address hidden inside an IPv6 one), so they live here, free of I/O; the
 * socks module imports them, never the other way round.
 */

/** How the application named the destination: RFC 1928's ATYP, in words. */
export type AddressType = "ipv4" | "ipv6" | "domain";

/**
 * A destination: an IPv4 address in dotted-quad form, an IPv6 address in RFC 5952 text form, or a
 * domain name exactly as the application sent it; `port` is 1..65535.
 */
export type Target = { type: AddressType; host: string; port: number };

export { embeddedIPv4, formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../wire/ip.ts";

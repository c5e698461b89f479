/**
 * The SOCKS5 entry: applications connect here (127.0.0.1:10809) and each CONNECT request becomes
 * a stream opened by the caller's `openStream` (through a circuit, or directly in tests).
 */
import type { Target } from "../exit/address.ts";

/**
 * The destination as the application sent it: IPv4 dotted quad, IPv6 in RFC 5952 compressed
 * form, or a domain exactly as sent (1..255 printable ASCII bytes). Same shape as the exit's Target.
 */
export type SocksTarget = Target;
export { type OpenStream, type OpenedStream, type SocksRequest } from "./session.ts";
export { type SocksServer, type SocksServerOptions, startSocksServer } from "./server.ts";
export {
  type Credentials,
  type Greeting,
  type ParseError,
  type ParseErrorCode,
  type ParseResult,
  type Request,
  parseCredentials,
  parseGreeting,
  parseRequest,
} from "./parse.ts";
export { authReply, commandReply, methodReply } from "./reply.ts";

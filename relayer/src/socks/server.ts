/**
 * The SOCKS5 listener (RFC 1928 CONNECT, RFC 1929 username/password) on 127.0.0.1:10809.
 * Each accepted connection is a session (session.ts); this file owns the count, the limit and
 * shutdown.
 */
import { createServer, type AddressInfo, type Socket } from "node:net";
import { type Logger, silentLogger } from "../log.ts";
import { type OpenStream, type Session, startSession } from "./session.ts";

export interface SocksServerOptions {
  /** Address to listen on; default "127.0.0.1". Anything else exposes the proxy to the network. */
  host?: string;
  /** Port to listen on; default 10809; 0 picks a free port (see `address`). */
  port?: number;
  /** Opens a stream for each accepted request. */
  openStream: OpenStream;
  /**
   * When set, clients must authenticate (method 0x02) and `verify` must return true. When unset,
   * method 0x00 is accepted, and 0x02 with any credentials (preferred when offered) so that
   * clients can choose circuit isolation by username.
   */
  auth?: { verify(username: string, password: string): boolean };
  /** Greeting, authentication and request must complete within this; default 10 000 ms. */
  handshakeTimeoutMs?: number;
  /** The greeting (the first few bytes) must arrive within this; default 3 000 ms. */
  greetingTimeoutMs?: number;
  /** openStream must resolve within this, or the client gets REP 6 (TTL expired); default 30 000 ms. */
  connectTimeoutMs?: number;
  /**
   * Open client connections allowed; default 1024. When full, a new connection takes the place of
   * the oldest one still in its handshake (a stalled client: slowloris), and is closed at once
   * only when every connection has finished its handshake.
   */
  maxConnections?: number;
  logger?: Logger;
}

export interface SocksServer {
  /** Where the server listens (the real port when 0 was asked for). */
  readonly address: { host: string; port: number };
  /** Client connections currently open. */
  readonly connections: number;
  /** Stops listening and destroys every client connection and its stream. */
  close(): Promise<void>;
}

/** Starts a SOCKS5 server; resolves once it listens, rejects if it cannot (port in use, bad option). */
export async function startSocksServer(options: SocksServerOptions): Promise<SocksServer> {
  const host = options.host ?? "127.0.0.1";
  const port = checkInteger("port", options.port ?? 10809, 0, 65535);
  const handshakeTimeoutMs = checkInteger("handshakeTimeoutMs", options.handshakeTimeoutMs ?? 10_000, 1, 2 ** 31 - 1);
  const greetingTimeoutMs = checkInteger("greetingTimeoutMs", options.greetingTimeoutMs ?? 3_000, 1, 2 ** 31 - 1);
  const connectTimeoutMs = checkInteger("connectTimeoutMs", options.connectTimeoutMs ?? 30_000, 1, 2 ** 31 - 1);
  const maxConnections = checkInteger("maxConnections", options.maxConnections ?? 1024, 1, 2 ** 31 - 1);
  if (typeof options.openStream !== "function") throw new TypeError("socks openStream: expected a function");
  const verify = options.auth ? options.auth.verify.bind(options.auth) : undefined;
  const logger = (options.logger ?? silentLogger).child({ component: "socks" });

  const sessions = new Set<Session>();
  // Sessions still in their handshake, oldest first (a Set keeps insertion order): when the server
  // is full, the oldest of these is the one a new client replaces.
  const handshaking = new Set<Session>();
  let nextId = 1;
  let limitLogged = false;
  let evicted = 0;
  // allowHalfOpen: a client's EOF ends only its direction (see session.ts).
  const server = createServer({ allowHalfOpen: true, noDelay: true });
  server.on("connection", (socket: Socket) => {
    if (sessions.size >= maxConnections) {
      const stalled = handshaking.values().next();
      if (!stalled.done) {
        // Serve the new client before a stalled one: a client that has not finished a handshake
        // of a few bytes while others arrive is the likeliest to be holding a slot on purpose.
        handshaking.delete(stalled.value);
        sessions.delete(stalled.value);
        stalled.value.destroy();
        if (evicted++ % 1000 === 0)
          logger.warn("socks connection limit reached; closing stalled handshakes", { evicted });
      }
    }
    if (sessions.size >= maxConnections) {
      socket.on("error", () => {}); // a reset racing the destroy must not become an uncaught error
      socket.destroy();
      // Once per episode of being full, so a flood of connections is not also a flood of log lines.
      if (!limitLogged) logger.warn("socks connection limit reached; closing new connections", { maxConnections });
      limitLogged = true;
      return;
    }
    limitLogged = false;
    const session = startSession(socket, {
      openStream: options.openStream,
      verify,
      handshakeTimeoutMs,
      greetingTimeoutMs,
      connectTimeoutMs,
      logger: logger.child({ conn: nextId++ }),
      onHandshakeDone: () => handshaking.delete(session),
      onClose: () => sessions.delete(session),
    });
    sessions.add(session);
    handshaking.add(session);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // After listening, accept errors (e.g. EMFILE) must be logged, not thrown.
  server.on("error", (error) => logger.error("socks server error", { error: error.name }));
  const info = server.address() as AddressInfo;
  const address = { host: info.address, port: info.port };
  logger.info("socks5 server listening", { host: address.host, port: address.port, auth: verify !== undefined });

  let closing: Promise<void> | undefined;
  return {
    address,
    get connections() {
      return sessions.size;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of [...sessions]) session.destroy();
        logger.info("socks5 server closed");
      });
      return closing;
    },
  };
}

function checkInteger(key: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`socks ${key}: expected an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * One SOCKS5 client connection: handshake, opening the stream, then relaying bytes both ways.
 *
 * The bytes are parsed by parse.ts; this file only moves them. Rules it keeps:
 * - every failure gets its reply, then a FIN, and the connection is drained for a moment before
 *   it is destroyed: closing a socket with unread input makes the kernel send RST, and an RST can
 *   discard our reply before the client reads it;
 * - bytes the client pipelines after its request (curl sends its HTTP request at once) are kept
 *   and written to the stream before anything else — or handed to the opener as `early`, which
 *   may send them with the open (optimistic data);
 * - after success both directions are piped with backpressure; an error or abrupt close on one
 *   side destroys the other, and an end of writes on one side ends writes on the other, so
 *   request-then-close (HTTP/1.0) protocols work;
 * - a stream that dies (circuit destroyed, the target reset, END with an error) is passed on to the
 *   application as a TCP reset, never a FIN: a FIN would make a truncated body of a protocol
 *   without a length field (HTTP/1.0, a raw download) look complete.
 */
import { pipeline, type Duplex } from "node:stream";
import type { Socket } from "node:net";
import type { Logger } from "../log.ts";
import { StreamOpenError, StreamReason } from "../wire/reasons.ts";
import type { Target } from "../exit/address.ts";
import { Method, type ParseError, parseCredentials, parseGreeting, parseRequest } from "./parse.ts";
import { authReply, commandReply, methodReply } from "./reply.ts";

/**
 * What the application asked for; `username` and `password` (RFC 1929) let the caller isolate
 * streams (Tor's IsolateSOCKSAuth uses both: browsers change the password for a new identity).
 */
export type SocksRequest = {
  target: Target;
  username?: string;
  password?: string;
  /**
   * Bytes the client sent right behind its request (optimistic data: it did not wait for our
   * reply). The opener may send them along with the stream open; it says so in `earlyWritten`.
   */
  early?: Buffer;
};
/**
 * A stream to the target; `bound` is revealed to the client as BND.ADDR/BND.PORT if given;
 * `earlyWritten` counts the bytes of `early` the opener already wrote to the stream.
 */
export type OpenedStream = { stream: Duplex; bound?: { host: string; port: number }; earlyWritten?: number };
/**
 * Opens a stream to the target. Reject with StreamOpenError(reason) to answer with that REP code;
 * any other rejection answers REP 1. Stop work when `signal` aborts (timeout or client gone).
 */
export type OpenStream = (request: SocksRequest, signal: AbortSignal) => Promise<OpenedStream>;

export type SessionOptions = {
  openStream: OpenStream;
  verify?: (username: string, password: string) => boolean;
  handshakeTimeoutMs: number;
  /** The greeting (first message, 3..257 bytes) must be complete within this (slowloris). */
  greetingTimeoutMs: number;
  connectTimeoutMs: number;
  /** Called once when the handshake is over (request parsed, or the session closed). */
  onHandshakeDone?: () => void;
  logger: Logger;
  onClose: () => void;
};

export type Session = { destroy(): void };

/** Optimistic data held while the stream opens; past this the socket is paused (TCP backpressure). */
const MAX_PENDING_BYTES = 64 * 1024;
/** How long a refused client may keep the connection open to read our reply. */
const LINGER_MS = 1_000;

type Phase = "greeting" | "auth" | "request" | "connecting" | "open" | "closing";

/**
 * Runs the SOCKS5 protocol on an accepted socket (created with allowHalfOpen) until it closes;
 * `onClose` is called once, when the client socket has closed.
 */
export function startSession(socket: Socket, options: SessionOptions): Session {
  const log = options.logger;
  let phase: Phase = "greeting";
  let pending: Buffer = Buffer.alloc(0);
  let username: string | undefined;
  let password: string | undefined;
  let stream: Duplex | undefined;
  let opening: AbortController | undefined;
  let lingerTimer: NodeJS.Timeout | undefined;
  let connectTimer: NodeJS.Timeout | undefined;

  // A client that cannot finish its handshake in time is broken or hostile: no reply, just close.
  const handshakeTimer = setTimeout(() => {
    log.debug("socks handshake timed out", { phase });
    destroy();
  }, options.handshakeTimeoutMs);

  // The greeting is a few bytes that every real client sends at once: a client still short of it
  // after a moment is holding a slot (slowloris), not connecting over a slow network.
  const greetingTimer = setTimeout(() => {
    if (phase !== "greeting") return;
    log.debug("socks greeting timed out");
    destroy();
  }, options.greetingTimeoutMs);

  let handshakeDone = false;
  const endHandshake = () => {
    if (handshakeDone) return;
    handshakeDone = true;
    clearTimeout(greetingTimer);
    options.onHandshakeDone?.();
  };

  const clearTimers = () => {
    clearTimeout(handshakeTimer);
    clearTimeout(greetingTimer);
    clearTimeout(connectTimer);
  };

  /** Tears everything down at once; used on errors, timeouts and server close. */
  const destroy = () => {
    if (phase !== "closing") phase = "closing";
    clearTimers();
    clearTimeout(lingerTimer);
    opening?.abort(new StreamOpenError(StreamReason.generalFailure, "client connection closed"));
    socket.destroy();
    stream?.destroy();
  };

  /** Sends a final reply, then FIN, drains the client's input and destroys after LINGER_MS. */
  const refuse = (reply: Buffer | undefined) => {
    if (phase === "closing") return;
    phase = "closing";
    clearTimers();
    opening?.abort(new StreamOpenError(StreamReason.generalFailure, "request refused"));
    pending = Buffer.alloc(0);
    if (reply) socket.end(reply);
    else socket.end();
    socket.resume();
    lingerTimer = setTimeout(() => socket.destroy(), LINGER_MS);
  };

  const onParseError = (error: ParseError, reply: Buffer | undefined) => {
    log.debug("socks protocol error", { phase, code: error.code, detail: error.message });
    refuse(reply);
  };

  /** Runs the handshake over whatever has arrived; several messages may arrive in one chunk. */
  const advance = () => {
    for (;;) {
      if (phase === "greeting") {
        const result = parseGreeting(pending);
        if (result.status === "need-more") return;
        // A non-SOCKS5 client (an HTTP request sent to the wrong port) gets no SOCKS5 reply.
        if (result.status === "error") {
          return onParseError(result, result.code === "bad-version" ? undefined : methodReply(Method.noAcceptable));
        }
        pending = pending.subarray(result.consumed);
        const method = chooseMethod(result.value.methods, options.verify !== undefined);
        if (method === Method.noAcceptable) {
          log.debug("socks no acceptable method", { offered: result.value.methods.join(",") });
          return refuse(methodReply(Method.noAcceptable));
        }
        socket.write(methodReply(method));
        phase = method === Method.usernamePassword ? "auth" : "request";
      } else if (phase === "auth") {
        const result = parseCredentials(pending);
        if (result.status === "need-more") return;
        if (result.status === "error") return onParseError(result, authReply(false));
        pending = pending.subarray(result.consumed);
        if (!checkCredentials(result.value.username, result.value.password)) {
          log.debug("socks authentication failed");
          return refuse(authReply(false));
        }
        username = result.value.username;
        password = result.value.password;
        socket.write(authReply(true));
        phase = "request";
      } else if (phase === "request") {
        const result = parseRequest(pending);
        if (result.status === "need-more") return;
        if (result.status === "error") return onParseError(result, commandReply(result.reason));
        pending = pending.subarray(result.consumed);
        clearTimeout(handshakeTimer);
        endHandshake();
        const early = pending.length > 0 ? pending : undefined;
        return open({ target: result.value.target, username, password, ...(early ? { early } : {}) });
      } else {
        return;
      }
    }
  };

  const checkCredentials = (user: string, password: string): boolean => {
    if (!options.verify) return true; // no auth configured: the username only selects isolation
    try {
      return options.verify(user, password) === true;
    } catch (error) {
      log.warn("socks credential check threw; refusing", { error: errorName(error) });
      return false;
    }
  };

  const open = (request: SocksRequest) => {
    phase = "connecting";
    const controller = new AbortController();
    opening = controller;
    log.debug("socks stream requested", {
      type: request.target.type,
      host: request.target.host,
      port: request.target.port,
      isolated: request.username !== undefined,
    });
    connectTimer = setTimeout(
      () => controller.abort(new StreamOpenError(StreamReason.ttlExpired, "stream did not open in time")),
      options.connectTimeoutMs,
    );
    // Answer as soon as the signal aborts (timeout, client gone): openStream may be slow to notice.
    controller.signal.addEventListener("abort", () => {
      if (phase !== "connecting") return;
      failOpen(controller.signal.reason);
    });
    // async wrapper: a synchronous throw from openStream becomes a rejection like any other.
    (async () => options.openStream(request, controller.signal))()
      .then(
        (opened) => {
          // Checked at run time too: a broken caller must cost one connection, not the process.
          if (typeof opened?.stream?.pipe !== "function") throw new TypeError("openStream resolved without a stream");
          if (phase !== "connecting") {
            opened.stream.on("error", () => {});
            opened.stream.destroy(); // too late: the client is gone or was already answered
            return;
          }
          opening = undefined;
          clearTimers();
          relay(opened);
        },
        (error: unknown) => {
          if (phase === "connecting") failOpen(error);
        },
      )
      .catch((error: unknown) => {
        log.error("socks stream setup failed", { error: errorName(error) });
        if (phase === "connecting") failOpen(error);
        else destroy();
      });
  };

  const failOpen = (error: unknown) => {
    let reason: StreamReason = error instanceof StreamOpenError ? error.reason : StreamReason.generalFailure;
    if (reason === StreamReason.done) reason = StreamReason.generalFailure; // REP 0 would mean success
    log.debug("socks stream failed", { reason, error: errorName(error) });
    opening = undefined;
    refuse(commandReply(reason));
  };

  const relay = (opened: OpenedStream) => {
    phase = "open";
    stream = opened.stream;
    const target = opened.stream;
    socket.off("data", onData);
    socket.write(commandReply(StreamReason.done, opened.bound));
    // What the opener sent with the open is the start of `pending` (which may have grown since).
    const rest = pending.subarray(Math.min(pending.length, opened.earlyWritten ?? 0));
    if (rest.length > 0) target.write(rest);
    pending = Buffer.alloc(0);
    // Registered before pipeline's own listeners, so the reset happens before pipeline would
    // destroy the socket gracefully (FIN).
    const reset = () => {
      if (socket.destroyed) return;
      log.debug("socks stream died: resetting the client connection");
      socket.resetAndDestroy();
    };
    target.once("error", reset);
    target.once("close", () => {
      if (!target.readableEnded) reset();
    });
    // pipeline ends the destination when the source ends (half-close) and destroys both streams on
    // an error or premature close of either; it also resumes a socket paused for backpressure.
    pipeline(socket, target, (error) => {
      if (error) log.debug("socks client-to-target ended with error", { error: errorName(error) });
    });
    pipeline(target, socket, (error) => {
      if (error) log.debug("socks target-to-client ended with error", { error: errorName(error) });
    });
  };

  const onData = (chunk: Buffer) => {
    if (phase === "closing") return; // draining after a refusal
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    if (pending.length > MAX_PENDING_BYTES) socket.pause(); // resumed by pipeline once open
    advance();
  };

  socket.on("data", onData);
  socket.on("end", () => {
    if (phase === "greeting" || phase === "auth" || phase === "request") {
      destroy(); // gave up mid-handshake: nothing to answer
    } else if (phase === "connecting" && pending.length === 0) {
      // EOF with nothing sent means the client gave up waiting; with data it is a request-then-close
      // client, whose data is forwarded and whose EOF is passed on once the stream opens.
      log.debug("socks client left while the stream was opening");
      destroy();
    }
  });
  // Errors are expected (resets, timeouts); 'close' follows and does the cleanup.
  socket.on("error", (error) => log.debug("socks client socket error", { phase, error: errorName(error) }));
  socket.on("close", () => {
    destroy();
    endHandshake();
    options.onClose();
  });

  return { destroy };
}

/**
 * With credentials configured only username/password is acceptable. Without, no-auth is accepted
 * and so is username/password with any credentials — and preferred when offered, because a client
 * that offers credentials wants its streams isolated by username (Tor's IsolateSOCKSAuth does the
 * same; curl -U offers both methods).
 */
function chooseMethod(methods: number[], authRequired: boolean): number {
  if (methods.includes(Method.usernamePassword)) return Method.usernamePassword;
  if (!authRequired && methods.includes(Method.noAuth)) return Method.noAuth;
  return Method.noAcceptable;
}

/** Error names and codes only: messages can carry destination addresses, which stay out of logs. */
function errorName(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" ? `${error.name} ${code}` : error.name;
  }
  return typeof error;
}

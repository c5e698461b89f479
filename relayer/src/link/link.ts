/**
 * A link: one TCP connection between two nodes, keyed by the hybrid handshake against the
 * responder's static keys, then carrying AES-256-GCM sealed cells (docs/protocol.md, "Link").
 * Only link/, socks/ and exit/ touch sockets; everything above sees `Link.send` and `onCell`.
 *
 * A peer's bytes are never trusted: frames are length-checked before buffering, every cell is
 * authenticated, and any failure closes this link only (the owner is told through `onClose`).
 */
import { Socket, connect as netConnect } from "node:net";
import { AuthenticationError, CellOpener, CellSealer, TAG_BYTES } from "../crypto/cipher.ts";
import {
  HELLO_BYTES,
  HandshakeError,
  REPLY_BYTES,
  respondToHandshake,
  startClientHandshake,
} from "../crypto/handshake.ts";
import type { RelayPublicKeys, StaticKeys } from "../crypto/keys.ts";
import { FrameReader, ProtocolError, decodeCell, encodeCellHeader, encodeFrameHeader } from "../wire/cell.ts";
import type { Cell, CellCommand } from "../wire/cell.ts";

export interface LinkHandler {
  onCell(cell: Cell): void;
  onClose(error: Error | undefined): void;
}

export interface LinkOptions {
  /** The whole handshake must finish within this time (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Source address for an outgoing link (multi-homed hosts; tests use other loopback addresses). */
  localAddress?: string;
  /** Cells per key before the GCM key ratchets (tests lower it). */
  rekeyInterval?: number;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Bytes a link's socket may hold unsent before circuit queues wait (see `congested`). */
const LINK_BUFFER_BYTES = 256 * 1024;

export class LinkError extends Error {
  override name = "LinkError";
}

type QueuedCell = { circuitId: number; command: CellCommand; body: readonly Buffer[] };

/**
 * One circuit's cells waiting for a congested link (Tor's circuit queues). A relay never stops
 * reading a link because one circuit's next hop is slow or frozen — that would stall every other
 * circuit on the link (head-of-line blocking) — so each circuit queues its own cells here, and the
 * link sends from the queues in turn (round robin) as the socket drains. A queue is bounded by
 * `limit`: `push` returns false past it, and the owner destroys that circuit.
 */
export class CellQueue {
  readonly limit: number;
  private readonly link: Link;
  /** Cells not yet sent; `head` is the next one (no Array.shift on the hot path). */
  items: QueuedCell[] = [];
  head = 0;
  active = false;
  closed = false;

  constructor(link: Link, limit: number) {
    this.link = link;
    this.limit = limit;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** Sends now if nothing of this circuit is waiting and the link can take it, else queues. */
  push(circuitId: number, command: CellCommand, body: readonly Buffer[]): boolean {
    if (this.closed) return true;
    if (this.length === 0 && !this.link.congested) {
      this.link.send(circuitId, command, body);
      return true;
    }
    if (this.length >= this.limit) return false;
    this.items.push({ circuitId, command, body });
    this.link.activate(this);
    return true;
  }

  /** The circuit is gone: drop what is queued and leave the link's rotation. */
  close(): void {
    this.closed = true;
    this.items = [];
    this.head = 0;
  }

  /** Takes the next cell (the link's scheduler calls this). */
  take(): QueuedCell | undefined {
    if (this.head >= this.items.length) return undefined;
    const cell = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return cell;
  }
}

export class Link {
  readonly remote: string;
  private readonly socket: Socket;
  private readonly reader = new FrameReader();
  private sealer: CellSealer | undefined;
  private opener: CellOpener | undefined;
  private handler: LinkHandler | undefined;
  private closed = false;
  private pauses = 0;
  private drainWaiters: Array<() => void> = [];
  /** Circuit queues with cells waiting, in turn order. */
  private active: CellQueue[] = [];
  private flushing = false;
  /** Cells sent and received, for accounting and tests. */
  cellsSent = 0;
  /** Date.now() of the last cell either way (idle sweeps). */
  lastActivity = Date.now();
  cellsReceived = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.remote = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    socket.setNoDelay(true);
    socket.on("drain", () => {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    });
  }

  /** Opens a link to the relay at host:port, authenticating it against `relay` (its keysHash). */
  static connect(host: string, port: number, relay: RelayPublicKeys, options: LinkOptions = {}): Promise<Link> {
    const socket = netConnect({ host, port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    const hs = startClientHandshake(relay);
    socket.once("connect", () => socket.write(Buffer.concat([encodeFrameHeader(hs.hello.length), hs.hello])));
    return Link.handshake(socket, `link to ${host}:${port}`, options, (link, reply) => {
      if (reply.length !== REPLY_BYTES) throw new HandshakeError("reply has the wrong size");
      const keys = hs.finish(reply);
      link.sealer = new CellSealer(keys.forward, options.rekeyInterval);
      link.opener = new CellOpener(keys.backward, options.rekeyInterval);
    });
  }

  /** Answers a link handshake on an accepted socket with this relay's static keys. */
  static accept(socket: Socket, keys: StaticKeys, options: LinkOptions = {}): Promise<Link> {
    return Link.handshake(socket, `link from ${socket.remoteAddress ?? "?"}`, options, (link, hello) => {
      const answer = respondToHandshake(keys, hello);
      link.sealer = new CellSealer(answer.keys.backward, options.rekeyInterval);
      link.opener = new CellOpener(answer.keys.forward, options.rekeyInterval);
      socket.write(Buffer.concat([encodeFrameHeader(answer.reply.length), answer.reply]));
    });
  }

  /**
   * Waits for the peer's first frame (HELLO or REPLY, at most HELLO_BYTES), lets `keyed` check it
   * and set the ciphers, then attaches the link. Any failure or the timeout destroys the socket.
   */
  private static handshake(
    socket: Socket,
    what: string,
    options: LinkOptions,
    keyed: (link: Link, frame: Buffer) => void,
  ): Promise<Link> {
    return new Promise((resolve, reject) => {
      const link = new Link(socket);
      const timer = setTimeout(
        () => fail(new LinkError(`${what}: handshake timed out`)),
        options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      );
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      socket.once("error", (cause) => fail(new LinkError(`${what}: ${cause.message}`, { cause })));
      socket.once("close", () => fail(new LinkError(`${what} closed during the handshake`)));
      const onData = (chunk: Buffer) => {
        let frames: Buffer[];
        try {
          frames = link.reader.push(chunk);
          if (frames.length === 0) {
            if (link.reader.pending > HELLO_BYTES + 4) throw new ProtocolError("oversized handshake message");
            return;
          }
          keyed(link, frames[0] as Buffer);
        } catch (error) {
          return fail(error instanceof Error ? error : new LinkError(String(error)));
        }
        clearTimeout(timer);
        socket.removeAllListeners("error");
        socket.removeAllListeners("close");
        socket.off("data", onData);
        link.attach();
        resolve(link);
        // Cells sent right behind the handshake wait until the owner sets a handler.
        link.deliver(frames.slice(1));
      };
      socket.on("data", onData);
    });
  }

  private backlog: Buffer[] = [];

  /** Sets who receives cells and the close notice; cells that arrived earlier are delivered now. */
  setHandler(handler: LinkHandler): void {
    this.handler = handler;
    const backlog = this.backlog;
    this.backlog = [];
    this.deliver(backlog);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * True when the socket holds LINK_BUFFER_BYTES unsent: circuit queues wait for a drain. Deeper
   * than the socket's high-water mark on purpose: filling the socket only to its mark on each
   * drain sent one or two 16 KiB cells per round trip to the kernel, a third of the throughput.
   */
  get congested(): boolean {
    return this.socket.writableLength >= LINK_BUFFER_BYTES;
  }

  /** True when the socket's buffer is full: wait for `onceDrained` before sending more. */
  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  onceDrained(callback: () => void): void {
    if (!this.socket.writableNeedDrain || this.closed) callback();
    else this.drainWaiters.push(callback);
  }

  /** Seals and sends one cell; returns false when the socket asks the sender to wait for drain. */
  send(circuitId: number, command: CellCommand, body: readonly Buffer[]): boolean {
    if (this.closed || !this.sealer) return false;
    const sealed = this.sealer.seal([encodeCellHeader(circuitId, command), ...body]);
    let length = 0;
    for (const part of sealed) length += part.length;
    this.socket.cork();
    this.socket.write(encodeFrameHeader(length));
    for (const part of sealed) this.socket.write(part);
    this.socket.uncork();
    this.cellsSent++;
    this.lastActivity = Date.now();
    return !this.socket.writableNeedDrain;
  }

  /** A queue of cells for one circuit on this link, holding at most `limit` cells. */
  openQueue(limit: number): CellQueue {
    return new CellQueue(this, limit);
  }

  /** Puts a queue with waiting cells in the rotation (CellQueue.push calls this). */
  activate(queue: CellQueue): void {
    if (queue.active) return;
    queue.active = true;
    this.active.push(queue);
    this.scheduleFlush();
  }

  /** Cells waiting in this link's circuit queues (tests, metrics). */
  get queuedCells(): number {
    let n = 0;
    for (const q of this.active) n += q.length;
    return n;
  }

  private scheduleFlush(): void {
    if (this.flushing || this.closed) return;
    this.flushing = true;
    this.onceDrained(() => {
      this.flushing = false;
      this.flush();
    });
  }

  /** Round robin over the circuits with waiting cells, one cell each, until the socket is full. */
  private flush(): void {
    let rounds = 0;
    while (this.active.length > 0 && !this.closed && !this.congested && rounds++ < 1_000_000) {
      const queue = this.active.shift() as CellQueue;
      const cell = queue.closed ? undefined : queue.take();
      if (cell) this.send(cell.circuitId, cell.command, cell.body);
      if (!queue.closed && queue.length > 0) this.active.push(queue);
      else queue.active = false;
    }
    if (this.closed) {
      for (const q of this.active) q.active = false;
      this.active = [];
    } else if (this.active.length > 0) this.scheduleFlush();
  }

  /** Stops reading from the peer (counted: each pause needs a resume). */
  pause(): void {
    if (this.pauses++ === 0) this.socket.pause();
  }

  resume(): void {
    if (this.pauses > 0 && --this.pauses === 0 && !this.closed) this.socket.resume();
  }

  close(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
    this.handler?.onClose(error);
  }

  private attach(): void {
    this.socket.on("data", (chunk: Buffer) => {
      try {
        this.deliver(this.reader.push(chunk));
      } catch (error) {
        this.close(error instanceof Error ? error : new LinkError(String(error)));
      }
    });
    this.socket.on("error", (error) => this.close(error));
    this.socket.on("close", () => this.close());
  }

  private deliver(frames: Buffer[]): void {
    if (!this.handler) {
      this.backlog.push(...frames);
      return;
    }
    for (const frame of frames) {
      if (this.closed) return;
      try {
        if (frame.length < TAG_BYTES + 5) throw new ProtocolError("frame too short for a cell");
        const cell = decodeCell((this.opener as CellOpener).open(frame));
        this.cellsReceived++;
        this.lastActivity = Date.now();
        this.handler.onCell(cell);
      } catch (error) {
        if (error instanceof ProtocolError || error instanceof AuthenticationError) return this.close(error);
        throw error;
      }
    }
  }
}

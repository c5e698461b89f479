/**
 * A link: one TCP connection between two nodes, keyed by the hybrid handshake against the
 * responder's static keys, then carrying cells whose headers it seals with AES-256-GCM
 * (docs/protocol.md, "Links"). A RELAY body is already sealed for the hop that removes its onion
 * layer, so the link does not encrypt it again: the sealed header binds the layer's tag (and the
 * frame's length) as associated data. Control cells (CREATE, CREATED, DESTROY) are sealed whole.
 * Only link/, socks/ and exit/ touch sockets; everything above sees `Link.send` and `onCell`.
 *
 * The send path is lean: frames are written into a reused slab, and the slab is handed to the
 * socket once per event-loop turn (one write for every cell of the turn).
 *
 * A peer's bytes are never trusted: frames are length-checked before buffering, every header and
 * control body is authenticated, and any failure closes this link only (the owner is told
 * through `onClose`).
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
import {
  CELL_HEADER_BYTES,
  CellCommand,
  FRAME_HEADER_BYTES,
  FrameReader,
  MAX_CELL_BODY_BYTES,
  MIN_CELL_FRAME_BYTES,
  ProtocolError,
  SEALED_CELL_HEADER_BYTES,
  decodeCellHeader,
  encodeFrameHeader,
} from "../wire/cell.ts";
import type { Cell } from "../wire/cell.ts";

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
/** Output slab: frames of a turn are written here and handed to the socket in one write. */
const SLAB_BYTES = 256 * 1024;
/** Slabs kept for reuse per link once the kernel has taken their bytes. */
const SLAB_POOL = 2;
/** A link that wrote nothing for this long sends the cells of a callback at once (scheduleWrite). */
const IDLE_LINK_MS = 1;
/** Largest frame on the wire, with its length prefix. */
const MAX_WIRE_FRAME = FRAME_HEADER_BYTES + SEALED_CELL_HEADER_BYTES + MAX_CELL_BODY_BYTES + TAG_BYTES;

/** A slab and the writes still holding parts of it. */
type Slab = { buf: Buffer; used: number; flushed: number; writes: number; retired: boolean };

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
  /** The slab being filled, slabs free for reuse, and whether a write is scheduled this turn. */
  private slab: Slab | undefined;
  private readonly freeSlabs: Slab[] = [];
  private writeScheduled = false;
  /** performance.now() of the last write handed to the socket. */
  private lastWrite = -Infinity;
  /** Per-link scratch: a cell header and the associated data that binds it. */
  private readonly head = Buffer.alloc(CELL_HEADER_BYTES);
  private readonly aad = Buffer.alloc(FRAME_HEADER_BYTES + TAG_BYTES);
  /** Cells sent and received, for accounting and tests. */
  cellsSent = 0;
  /** Date.now() of the last cell either way (idle sweeps). */
  lastActivity = Date.now();
  cellsReceived = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.remote = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    socket.setNoDelay(true);
    socket.on("drain", () => this.runDrainWaiters());
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

  /** Bytes waiting: in the socket and in this turn's slab. */
  private get unsent(): number {
    const slab = this.slab;
    return this.socket.writableLength + (slab ? slab.used - slab.flushed : 0);
  }

  /**
   * True when LINK_BUFFER_BYTES wait unsent: circuit queues wait for a drain. Deeper than the
   * socket's high-water mark on purpose: filling the socket only to its mark on each drain sent
   * one or two 16 KiB cells per round trip to the kernel, a third of the throughput.
   */
  get congested(): boolean {
    return this.unsent >= LINK_BUFFER_BYTES;
  }

  /** True when too much waits unsent: wait for `onceDrained` before sending more. */
  get needsDrain(): boolean {
    return this.socket.writableNeedDrain || this.unsent >= LINK_BUFFER_BYTES;
  }

  onceDrained(callback: () => void): void {
    if (!this.needsDrain || this.closed) callback();
    else this.drainWaiters.push(callback);
  }

  /**
   * Sends one cell; returns false when the sender should wait for `onceDrained`. A RELAY body
   * must end with its onion layer's 16-byte tag (it is not encrypted again here); any other
   * body is sealed with the link key.
   */
  send(circuitId: number, command: CellCommand, body: readonly Buffer[]): boolean {
    if (this.closed || !this.sealer) return false;
    let bodyBytes = 0;
    for (const part of body) bodyBytes += part.length;
    if (bodyBytes > MAX_CELL_BODY_BYTES) throw new RangeError(`cell body of ${bodyBytes} bytes`);
    const relay = command === CellCommand.relay;
    if (relay && bodyBytes < TAG_BYTES + 1) throw new RangeError("RELAY body shorter than an onion layer");
    const length = SEALED_CELL_HEADER_BYTES + bodyBytes + (relay ? 0 : TAG_BYTES);
    const head = this.head;
    head.writeUInt32BE(circuitId, 0);
    head[4] = command;
    const aad = this.aad;
    aad.writeUInt32BE(length, 0);
    const slab = this.reserve(FRAME_HEADER_BYTES + length);
    const buf = slab.buf;
    let at = slab.used;
    buf.writeUInt32BE(length, at);
    at += FRAME_HEADER_BYTES;
    if (relay) {
      copyTail(body, bodyBytes, aad, FRAME_HEADER_BYTES);
      const [ct, tag] = this.sealer.sealDetached(head, aad);
      at += ct.copy(buf, at);
      at += tag.copy(buf, at);
      for (const part of body) at += part.copy(buf, at);
    } else {
      const plain = body.length === 1 ? (body[0] as Buffer) : Buffer.concat(body as Buffer[], bodyBytes);
      const sealed = this.sealer.sealPair(head, plain, (tag) => {
        tag.copy(aad, FRAME_HEADER_BYTES);
        return aad;
      });
      for (const part of sealed) at += part.copy(buf, at);
    }
    slab.used = at;
    this.cellsSent++;
    this.lastActivity = Date.now();
    this.scheduleWrite();
    return !this.needsDrain;
  }

  /** A slab with room for `bytes`; a full one is handed to the socket first. */
  private reserve(bytes: number): Slab {
    const slab = this.slab;
    if (slab && slab.buf.length - slab.used >= bytes) return slab;
    if (slab) {
      this.writeOut();
      slab.retired = true;
      this.release(slab);
    }
    const next = this.freeSlabs.pop() ?? {
      buf: Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, MAX_WIRE_FRAME)),
      used: 0,
      flushed: 0,
      writes: 0,
      retired: false,
    };
    next.used = 0;
    next.flushed = 0;
    next.retired = false;
    this.slab = next;
    return next;
  }

  /** Back to the pool once it is retired and the kernel has every byte of it. */
  private release(slab: Slab): void {
    if (slab.retired && slab.writes === 0 && this.freeSlabs.length < SLAB_POOL && !this.closed)
      this.freeSlabs.push(slab);
  }

  /**
   * An idle link (nothing written for IDLE_LINK_MS, the kernel has taken every byte) writes as
   * soon as the current callback is done: a CREATE, an EXTEND or a stream's first cells must not
   * wait for the rest of the event-loop turn (other sockets' callbacks, an ephemeral key
   * generation) at every hop. A link in use waits for the end of the turn, so that the cells of
   * every callback in it leave in one write (many streams: one write, not one per stream).
   */
  private scheduleWrite(): void {
    if (this.writeScheduled) return;
    this.writeScheduled = true;
    if (this.socket.writableLength === 0 && performance.now() - this.lastWrite >= IDLE_LINK_MS)
      process.nextTick(this.endOfTurn);
    else setImmediate(this.endOfTurn);
  }

  /**
   * Hands what is waiting to the socket now, not at the end of this callback: for a cell that
   * heads a round trip (CREATE, EXTEND, CREATED) when the caller has CPU work to do next that
   * does not need the answer (the next hop's HELLO, the new circuit's state).
   */
  flushNow(): void {
    if (!this.writeScheduled) return;
    this.writeOut();
  }

  /** Every frame of this callback (idle link) or event-loop turn (busy link) leaves in one write. */
  private readonly endOfTurn = (): void => {
    this.writeScheduled = false;
    this.writeOut();
    this.runDrainWaiters();
  };

  private writeOut(): void {
    const slab = this.slab;
    if (!slab || slab.used === slab.flushed || this.closed) return;
    const chunk = slab.buf.subarray(slab.flushed, slab.used);
    slab.flushed = slab.used;
    this.lastWrite = performance.now();
    slab.writes++;
    this.socket.write(chunk, () => {
      slab.writes--;
      this.release(slab);
    });
  }

  private runDrainWaiters(): void {
    if (this.drainWaiters.length === 0 || (this.needsDrain && !this.closed)) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
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
    this.slab = undefined;
    this.freeSlabs.length = 0;
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
      let cell: Cell;
      try {
        cell = this.openFrame(frame);
      } catch (error) {
        if (error instanceof ProtocolError || error instanceof AuthenticationError) return this.close(error);
        throw error;
      }
      try {
        this.handler.onCell(cell);
      } catch (error) {
        if (error instanceof ProtocolError || error instanceof AuthenticationError) return this.close(error);
        throw error;
      }
    }
  }

  /** Authenticates a frame: its header (bound to its length and last 16 bytes), and a control body. */
  private openFrame(frame: Buffer): Cell {
    if (frame.length < MIN_CELL_FRAME_BYTES) throw new ProtocolError("frame too short for a cell");
    const opener = this.opener as CellOpener;
    const aad = this.aad;
    aad.writeUInt32BE(frame.length, 0);
    frame.copy(aad, FRAME_HEADER_BYTES, frame.length - TAG_BYTES);
    const head = opener.openDetached(
      frame.subarray(0, CELL_HEADER_BYTES),
      frame.subarray(CELL_HEADER_BYTES, SEALED_CELL_HEADER_BYTES),
      aad,
    );
    const { circuitId, command } = decodeCellHeader(head);
    const rest = frame.subarray(SEALED_CELL_HEADER_BYTES);
    // A RELAY body is the onion layer as sent: its own tag is checked by the hop that opens it.
    if (command === CellCommand.relay && rest.length <= TAG_BYTES) throw new ProtocolError("RELAY body too short");
    const body = command === CellCommand.relay ? rest : opener.open(rest);
    this.cellsReceived++;
    this.lastActivity = Date.now();
    return { circuitId, command, body };
  }
}

/** Copies the last TAG_BYTES of the concatenation of `parts` (total `bytes`) into `out` at `offset`. */
function copyTail(parts: readonly Buffer[], bytes: number, out: Buffer, offset: number): void {
  let skip = bytes - TAG_BYTES;
  let at = offset;
  for (const part of parts) {
    if (skip >= part.length) {
      skip -= part.length;
      continue;
    }
    at += part.copy(out, at, skip);
    skip = 0;
  }
}

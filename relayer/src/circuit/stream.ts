/**
 * One stream of a circuit, as a Node Duplex: bytes written are sent as DATA cells; DATA cells
 * received are readable. Flow control is end to end between the client and the exit, per stream,
 * with a window of cells (docs/protocol.md, "Flow control"): a sender stops at zero credit, and
 * the receiver returns credit (SENDME) only once its reader has taken the data, so a slow reader
 * holds at most `window` cells in memory and never grows a buffer without bound.
 */
import { Duplex } from "node:stream";
import { MAX_RELAY_DATA_BYTES, ProtocolError, RelayCommand } from "../wire/cell.ts";
import { StreamReason } from "../wire/reasons.ts";
import { StreamOpenError } from "../wire/reasons.ts";

/**
 * Cells a sender may have in flight per stream, and the credit step: a receiver returns credit
 * only in steps of SENDME_STEP cells (one SENDME per step, not one per read), which is
 * deadlock-free because a blocked sender means STREAM_WINDOW >= SENDME_STEP cells are waiting
 * for credit. Sized by measurement (docs/protocol.md, "Flow control"); a slow reader holds at
 * most STREAM_WINDOW full cells (STREAM_WINDOW x 16,296 bytes) per stream.
 */
export const STREAM_WINDOW = 64;
export const SENDME_STEP = 16;
const EMPTY = Buffer.alloc(0);

export interface StreamTransport {
  /** Sends one relay message for this stream; returns false when the link wants a drain. */
  send(command: RelayCommand, streamId: number, data: readonly Buffer[]): boolean;
  /** Calls back once the link below can take more. */
  whenWritable(callback: () => void): void;
  /**
   * The stream is gone on this side: forget it. `peerEnded` is false when the far side has not
   * sent END yet, so CONNECTED, DATA or END may still be in flight for this id.
   */
  release(streamId: number, peerEnded: boolean): void;
}

export class CircuitStream extends Duplex {
  readonly streamId: number;
  private readonly transport: StreamTransport;
  private sendWindow = STREAM_WINDOW;
  private unacked = 0;
  private receivedSinceCredit = 0;
  /** Bytes written and not yet sent (waiting for credit), oldest first, and the write to complete. */
  private pending: Buffer[] = [];
  private pendingHead = 0;
  private pendingOffset = 0;
  private pendingBytes = 0;
  private pendingCallback: ((error?: Error | null) => void) | undefined;
  private sentEnd = false;
  private gotEnd = false;

  constructor(streamId: number, transport: StreamTransport) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.streamId = streamId;
    this.transport = transport;
  }

  /** A DATA/END/SENDME message for this stream arrived. Throws ProtocolError on a violation. */
  receive(command: RelayCommand, data: Buffer): void {
    if (command === RelayCommand.data) {
      if (this.gotEnd) throw new ProtocolError("DATA after END");
      if (data.length === 0 || data.length > MAX_RELAY_DATA_BYTES) throw new ProtocolError("DATA size out of bounds");
      if (++this.unacked > STREAM_WINDOW) throw new ProtocolError("peer overran the stream window");
      this.receivedSinceCredit++;
      this.push(data);
      this.maybeCredit();
    } else if (command === RelayCommand.sendme) {
      if (data.length !== 2) throw new ProtocolError("SENDME size");
      const credit = data.readUInt16BE(0);
      if (credit === 0 || this.sendWindow + credit > STREAM_WINDOW) throw new ProtocolError("SENDME beyond the window");
      this.sendWindow += credit;
      this.pump();
    } else if (command === RelayCommand.end) {
      const reason = data.length >= 1 ? (data[0] as number) : StreamReason.done;
      this.gotEnd = true;
      if (reason === StreamReason.done) this.push(null);
      else
        this.destroy(
          new StreamOpenError(StreamReason.generalFailure, `stream ended by the far side (reason ${reason})`),
        );
    } else {
      throw new ProtocolError(`relay command ${command} is not a stream command`);
    }
  }

  /** The circuit under this stream died. */
  abort(error: Error): void {
    this.gotEnd = true;
    this.sentEnd = true;
    // A stream nobody listens to for errors (not yet handed out, or already detached) must not
    // turn a dead circuit into an uncaught exception that takes the process down.
    this.destroy(this.listenerCount("error") > 0 ? error : undefined);
  }

  override _read(): void {
    // The reader wants more. Node calls _read before it takes the chunk it is reading out of the
    // buffer, and not again until the next push: so credit what a step allows now. A sender at
    // zero window has STREAM_WINDOW >= SENDME_STEP cells uncredited here, so it always gets some.
    this.maybeCredit(true);
  }

  private maybeCredit(wanted = false): void {
    if (this.receivedSinceCredit < SENDME_STEP) return;
    if (!wanted && this.readableLength >= this.readableHighWaterMark) return;
    const credit = this.receivedSinceCredit;
    this.receivedSinceCredit = 0;
    this.unacked -= credit;
    const body = Buffer.allocUnsafe(2);
    body.writeUInt16BE(credit, 0);
    this.transport.send(RelayCommand.sendme, this.streamId, [body]);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.pendingCallback = callback;
    this.pump();
  }

  /** Everything the writer buffered while we waited: packed into full cells across chunk ends. */
  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    for (const { chunk } of chunks) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    this.pendingCallback = callback;
    this.pump();
  }

  /** Sends full DATA cells while credit lasts; the last one carries what is left. */
  private pump(): void {
    if (!this.pendingCallback) return;
    let writable = true;
    while (this.pendingBytes > 0 && this.sendWindow > 0) {
      const take = Math.min(this.pendingBytes, MAX_RELAY_DATA_BYTES);
      writable = this.transport.send(RelayCommand.data, this.streamId, this.takePending(take));
      this.sendWindow--;
    }
    if (this.pendingBytes > 0) return; // wait for SENDME
    const callback = this.pendingCallback;
    this.pendingCallback = undefined;
    if (writable) callback();
    else this.transport.whenWritable(() => callback());
  }

  /** The next `bytes` of the pending chunks, as views (no copy: the onion layer copies once). */
  private takePending(bytes: number): Buffer[] {
    const parts: Buffer[] = [];
    let left = bytes;
    while (left > 0) {
      const head = this.pending[this.pendingHead] as Buffer;
      const available = head.length - this.pendingOffset;
      if (available <= left) {
        parts.push(this.pendingOffset === 0 ? head : head.subarray(this.pendingOffset));
        left -= available;
        this.pending[this.pendingHead++] = EMPTY;
        this.pendingOffset = 0;
      } else {
        parts.push(head.subarray(this.pendingOffset, this.pendingOffset + left));
        this.pendingOffset += left;
        left = 0;
      }
    }
    this.pendingBytes -= bytes;
    if (this.pendingHead === this.pending.length) {
      this.pending = [];
      this.pendingHead = 0;
    }
    return parts;
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.sentEnd = true;
    this.transport.send(RelayCommand.end, this.streamId, [Buffer.of(StreamReason.done)]);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.sentEnd) {
      this.sentEnd = true;
      const reason =
        error instanceof StreamOpenError ? error.reason : error ? StreamReason.generalFailure : StreamReason.done;
      this.transport.send(RelayCommand.end, this.streamId, [Buffer.of(reason)]);
    }
    const waiting = this.pendingCallback;
    this.pendingCallback = undefined;
    this.pending = [];
    this.pendingBytes = 0;
    this.transport.release(this.streamId, this.gotEnd);
    if (waiting) waiting(error ?? new Error("stream destroyed"));
    callback(error);
  }
}

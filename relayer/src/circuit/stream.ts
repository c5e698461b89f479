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

/** Cells a sender may have in flight per stream, and the credit step. */
export const STREAM_WINDOW = 32;
export const SENDME_STEP = 8;

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
  private pending: { chunk: Buffer; offset: number; callback: (error?: Error | null) => void } | undefined;
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
    // buffer, and not again until the next push: so credit everything now, or a sender at zero
    // window and a reader waiting for a push would wait for each other forever.
    this.maybeCredit(true);
  }

  private maybeCredit(wanted = false): void {
    if (this.receivedSinceCredit === 0) return;
    if (!wanted && (this.receivedSinceCredit < SENDME_STEP || this.readableLength >= this.readableHighWaterMark))
      return;
    const credit = this.receivedSinceCredit;
    this.receivedSinceCredit = 0;
    this.unacked -= credit;
    const body = Buffer.allocUnsafe(2);
    body.writeUInt16BE(credit, 0);
    this.transport.send(RelayCommand.sendme, this.streamId, [body]);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pending = { chunk, offset: 0, callback };
    this.pump();
  }

  private pump(): void {
    const p = this.pending;
    if (!p) return;
    let writable = true;
    while (p.offset < p.chunk.length && this.sendWindow > 0) {
      const end = Math.min(p.chunk.length, p.offset + MAX_RELAY_DATA_BYTES);
      writable = this.transport.send(RelayCommand.data, this.streamId, [p.chunk.subarray(p.offset, end)]);
      p.offset = end;
      this.sendWindow--;
    }
    if (p.offset < p.chunk.length) return; // wait for SENDME
    this.pending = undefined;
    if (writable) p.callback();
    else this.transport.whenWritable(() => p.callback());
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
    const p = this.pending;
    this.pending = undefined;
    this.transport.release(this.streamId, this.gotEnd);
    if (p) p.callback(error ?? new Error("stream destroyed"));
    callback(error);
  }
}

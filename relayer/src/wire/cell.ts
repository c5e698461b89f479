/**
 * The one definition of the relay cell and of the frames that carry it (docs/protocol.md, "Wire").
 * Pure functions over bytes; every length is checked against an explicit bound before use.
 *
 * Link frame:  length u32 BE | payload (length bytes, at most MAX_FRAME_BYTES)
 *   The first frame each way is the link handshake (HELLO / REPLY) in clear; every later payload
 *   is a cell: its 5-byte header sealed with the link key (AES-256-GCM, 21 bytes), then
 *   - RELAY: the body as it is (the outermost onion layer, already sealed for the hop that
 *     removes it); the header's associated data is length | the layer's 16-byte tag;
 *   - any other command: the body sealed with the link key (the next nonce), associated data length.
 * Cell:        circuit id u32 BE | command u8 | body (at most MAX_CELL_BODY_BYTES)
 * RELAY body:  onion layers; once the last layer is removed, a relay message:
 *              command u8 | stream id u16 BE | data
 */
import { TAG_BYTES } from "../crypto/cipher.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "./ip.ts";
import { StreamReason, parseStreamReason } from "./reasons.ts";

/** Largest cell body: the "packet" that rewards count has at most this many bytes (cellSize). */
export const MAX_CELL_BODY_BYTES = 16_384;
export const CELL_HEADER_BYTES = 5;
export const MAX_CELL_BYTES = CELL_HEADER_BYTES + MAX_CELL_BODY_BYTES;
/** A cell header as a link carries it: sealed with the link key. */
export const SEALED_CELL_HEADER_BYTES = CELL_HEADER_BYTES + TAG_BYTES;
/** A link frame's payload: a cell (header and, for control cells, body sealed), or a handshake message. */
export const MAX_FRAME_BYTES = SEALED_CELL_HEADER_BYTES + MAX_CELL_BODY_BYTES + TAG_BYTES;
/** Smallest cell payload: a sealed header and a sealed empty control body. */
export const MIN_CELL_FRAME_BYTES = SEALED_CELL_HEADER_BYTES + TAG_BYTES;
export const FRAME_HEADER_BYTES = 4;
/** Most hops a circuit may have (1–5; 3 by default). */
export const MAX_HOPS = 5;
/** One onion layer: a 1-byte "for you / pass on" flag and the GCM tag. */
export const LAYER_OVERHEAD_BYTES = 1 + TAG_BYTES;
export const RELAY_HEADER_BYTES = 3;
/** Largest DATA payload: fits through MAX_HOPS layers whatever the circuit length. */
export const MAX_RELAY_DATA_BYTES = MAX_CELL_BODY_BYTES - MAX_HOPS * LAYER_OVERHEAD_BYTES - RELAY_HEADER_BYTES;

export const CellCommand = {
  create: 1,
  created: 2,
  relay: 3,
  destroy: 4,
  /** Link-level (circuit id 0) liveness probe between relays: body up to PING_MAX_BYTES, echoed in PONG. */
  ping: 5,
  pong: 6,
  /** Link-level (circuit id 0): an uptime attestation for the receiving relay (wire/uptime.ts). */
  uptime: 7,
} as const;
/** Largest PING / PONG body (the prober's sequence number). */
export const PING_MAX_BYTES = 8;
export type CellCommand = (typeof CellCommand)[keyof typeof CellCommand];

export const RelayCommand = {
  begin: 1,
  connected: 2,
  data: 3,
  end: 4,
  sendme: 5,
  extend: 6,
  extended: 7,
  extendFailed: 8,
  /** Liveness probe for one hop (data: up to PROBE_MAX_BYTES, echoed); answered with PROBED. */
  probe: 9,
  probed: 10,
  /** In-band payment (wire/payment.ts): client → hop on stream 0, PAY_STOP hop → client. */
  payHello: 11,
  payLock: 12,
  payReceipt: 13,
  payStop: 14,
} as const;
export type RelayCommand = (typeof RelayCommand)[keyof typeof RelayCommand];
export const PROBE_MAX_BYTES = 8;

/** Why a circuit was destroyed (DESTROY body). */
export const DestroyReason = {
  none: 0,
  protocol: 1,
  internal: 2,
  requested: 3,
  authentication: 4,
  resourceLimit: 5,
  connectFailed: 6,
  timeout: 7,
  linkClosed: 8,
  /** The hop stopped serving the circuit's payer (a PAY_STOP with the reason came first). */
  payment: 9,
} as const;
export type DestroyReason = (typeof DestroyReason)[keyof typeof DestroyReason];

/** A peer sent bytes that break the protocol: the link (or circuit) that carried them closes. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

export interface Cell {
  circuitId: number;
  command: CellCommand;
  body: Buffer;
}

const CELL_COMMANDS = new Set<number>(Object.values(CellCommand));
const RELAY_COMMANDS = new Set<number>(Object.values(RelayCommand));

export function encodeCellHeader(circuitId: number, command: CellCommand): Buffer {
  const header = Buffer.allocUnsafe(CELL_HEADER_BYTES);
  header.writeUInt32BE(circuitId, 0);
  header[4] = command;
  return header;
}

/** Parses an opened cell header (circuit id, command); the body travels beside it. */
export function decodeCellHeader(bytes: Buffer): { circuitId: number; command: CellCommand } {
  if (bytes.length !== CELL_HEADER_BYTES) throw new ProtocolError("cell header of the wrong size");
  const command = bytes[4] as number;
  if (!CELL_COMMANDS.has(command)) throw new ProtocolError(`unknown cell command ${command}`);
  return { circuitId: bytes.readUInt32BE(0), command: command as CellCommand };
}

export function decodeCell(bytes: Buffer): Cell {
  if (bytes.length < CELL_HEADER_BYTES) throw new ProtocolError("cell shorter than its header");
  if (bytes.length > MAX_CELL_BYTES) throw new ProtocolError(`cell of ${bytes.length} bytes exceeds ${MAX_CELL_BYTES}`);
  const command = bytes[4] as number;
  if (!CELL_COMMANDS.has(command)) throw new ProtocolError(`unknown cell command ${command}`);
  return { circuitId: bytes.readUInt32BE(0), command: command as CellCommand, body: bytes.subarray(CELL_HEADER_BYTES) };
}

export function encodeFrameHeader(length: number): Buffer {
  if (!Number.isInteger(length) || length < 1 || length > MAX_FRAME_BYTES)
    throw new RangeError(`frame length ${length}`);
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(length, 0);
  return header;
}

/**
 * Incremental frame reader: feed it TCP chunks, get whole frame payloads. A payload that sits in
 * one chunk is returned as a view (no copy). The length is checked before anything is buffered,
 * so a peer cannot make it hold more than one frame.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly max: number;

  constructor(maxFrameBytes = MAX_FRAME_BYTES) {
    this.max = maxFrameBytes;
  }

  /** Bytes held for an incomplete frame. */
  get pending(): number {
    return this.buffered;
  }

  /**
   * Appends `chunk` and returns every frame now complete, in order. Throws ProtocolError. A frame
   * that spans chunks is copied together once (only its own bytes); the rest are views.
   */
  push(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    let offset = 0;
    if (this.buffered > 0) {
      // Complete the pending frame with only the bytes of `chunk` it needs.
      if (this.buffered < FRAME_HEADER_BYTES) {
        const take = Math.min(FRAME_HEADER_BYTES - this.buffered, chunk.length);
        this.keep(chunk.subarray(0, take));
        offset = take;
        if (this.buffered < FRAME_HEADER_BYTES) return frames;
      }
      const length = this.checkLength(this.peekHeader());
      const take = Math.min(FRAME_HEADER_BYTES + length - this.buffered, chunk.length - offset);
      this.keep(chunk.subarray(offset, offset + take));
      offset += take;
      if (this.buffered < FRAME_HEADER_BYTES + length) return frames;
      const all = Buffer.concat(this.chunks, this.buffered);
      frames.push(all.subarray(FRAME_HEADER_BYTES));
      this.chunks = [];
      this.buffered = 0;
    }
    // Parse straight out of the chunk.
    while (chunk.length - offset >= FRAME_HEADER_BYTES) {
      const length = this.checkLength(chunk.readUInt32BE(offset));
      if (chunk.length - offset - FRAME_HEADER_BYTES < length) break;
      offset += FRAME_HEADER_BYTES;
      frames.push(chunk.subarray(offset, offset + length));
      offset += length;
    }
    if (offset < chunk.length) this.keep(chunk.subarray(offset));
    return frames;
  }

  private keep(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered >= FRAME_HEADER_BYTES) this.checkLength(this.peekHeader());
  }

  private peekHeader(): number {
    const first = this.chunks[0] as Buffer;
    if (first.length >= FRAME_HEADER_BYTES) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks, this.buffered).readUInt32BE(0);
  }

  private checkLength(length: number): number {
    if (length === 0 || length > this.max) throw new ProtocolError(`frame length ${length} outside 1..${this.max}`);
    return length;
  }
}

/** A relay message, once every onion layer is off. */
export interface RelayMessage {
  command: RelayCommand;
  streamId: number;
  data: Buffer;
}

export function encodeRelayHeader(command: RelayCommand, streamId: number): Buffer {
  const header = Buffer.allocUnsafe(RELAY_HEADER_BYTES);
  header[0] = command;
  header.writeUInt16BE(streamId, 1);
  return header;
}

export function decodeRelayMessage(bytes: Buffer): RelayMessage {
  if (bytes.length < RELAY_HEADER_BYTES) throw new ProtocolError("relay message shorter than its header");
  const command = bytes[0] as number;
  if (!RELAY_COMMANDS.has(command)) throw new ProtocolError(`unknown relay command ${command}`);
  return {
    command: command as RelayCommand,
    streamId: bytes.readUInt16BE(1),
    data: bytes.subarray(RELAY_HEADER_BYTES),
  };
}

/** Where a stream goes: sent in BEGIN; the exit resolves names itself (socks5h). */
export interface Target {
  type: "ipv4" | "ipv6" | "domain";
  host: string;
  port: number;
}

const ATYP = { ipv4: 1, domain: 3, ipv6: 4 } as const;

export function encodeTarget(target: Target): Buffer {
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) throw new RangeError("target port");
  let addr: Buffer;
  if (target.type === "ipv4") {
    const bytes = parseIPv4(target.host);
    if (!bytes) throw new RangeError("IPv4 host");
    addr = Buffer.concat([Buffer.of(ATYP.ipv4), bytes]);
  } else if (target.type === "ipv6") {
    // Any RFC 4291 text form, including a dotted tail (`::ffff:127.0.0.1`): parsed by the one IPv6
    // parser, so the exit sees the very 16 bytes the application sent.
    const bytes = parseIPv6(target.host);
    if (!bytes) throw new RangeError("IPv6 host");
    addr = Buffer.concat([Buffer.of(ATYP.ipv6), bytes]);
  } else {
    const name = Buffer.from(target.host, "utf8");
    if (name.length < 1 || name.length > 255) throw new RangeError("domain length");
    addr = Buffer.concat([Buffer.of(ATYP.domain, name.length), name]);
  }
  const port = Buffer.allocUnsafe(2);
  port.writeUInt16BE(target.port, 0);
  return Buffer.concat([addr, port]);
}

export function decodeTarget(bytes: Buffer): Target {
  const fail = (why: string): never => {
    throw new ProtocolError(`BEGIN target: ${why}`);
  };
  if (bytes.length < 1) fail("empty");
  const atyp = bytes[0];
  let host: string;
  let type: Target["type"];
  let offset: number;
  if (atyp === ATYP.ipv4) {
    if (bytes.length !== 1 + 4 + 2) fail("bad IPv4 length");
    host = formatIPv4(bytes.subarray(1, 5));
    type = "ipv4";
    offset = 5;
  } else if (atyp === ATYP.ipv6) {
    if (bytes.length !== 1 + 16 + 2) fail("bad IPv6 length");
    host = formatIPv6(bytes.subarray(1, 17)); // RFC 5952; IPv4-mapped as ::ffff:a.b.c.d
    type = "ipv6";
    offset = 17;
  } else if (atyp === ATYP.domain) {
    const length = bytes[1] ?? 0;
    if (length < 1 || bytes.length !== 2 + length + 2) fail("bad domain length");
    const name = bytes.subarray(2, 2 + length);
    if (name.some((c) => c < 0x21 || c > 0x7e)) fail("domain has non-printable bytes");
    host = name.toString("latin1");
    type = "domain";
    offset = 2 + length;
  } else {
    return fail(`unknown address type ${atyp}`);
  }
  const port = bytes.readUInt16BE(offset);
  if (port === 0) fail("port 0");
  return { type, host, port };
}

export function encodeReason(reason: StreamReason): Buffer {
  return Buffer.of(reason);
}

export function decodeReason(bytes: Buffer): StreamReason {
  return bytes.length >= 1 ? parseStreamReason(bytes[0] as number) : StreamReason.done;
}

/** EXTEND: where the next hop is, its static public keys, and the HELLO for it. */
export interface ExtendRequest {
  host: string;
  port: number;
  x25519: Buffer;
  mlkem: Buffer;
  hello: Buffer;
}

export function encodeExtend(req: ExtendRequest): Buffer {
  const host = Buffer.from(req.host, "utf8");
  if (host.length < 1 || host.length > 255) throw new RangeError("extend host");
  const port = Buffer.allocUnsafe(2);
  port.writeUInt16BE(req.port, 0);
  return Buffer.concat([Buffer.of(host.length), host, port, req.x25519, req.mlkem, req.hello]);
}

export function decodeExtend(bytes: Buffer, sizes: { x25519: number; mlkem: number; hello: number }): ExtendRequest {
  const hostLength = bytes[0] ?? 0;
  const expected = 1 + hostLength + 2 + sizes.x25519 + sizes.mlkem + sizes.hello;
  if (hostLength < 1 || bytes.length !== expected) throw new ProtocolError("EXTEND: bad length");
  let offset = 1;
  const take = (n: number) => bytes.subarray(offset, (offset += n));
  const host = take(hostLength).toString("latin1");
  const port = take(2).readUInt16BE(0);
  if (port === 0) throw new ProtocolError("EXTEND: port 0");
  return { host, port, x25519: take(sizes.x25519), mlkem: take(sizes.mlkem), hello: take(sizes.hello) };
}

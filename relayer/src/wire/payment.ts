/**
 * The payment messages a payer's node and a hop exchange in-band, inside the circuit, readable by
 * that hop only (they ride a relay message addressed to the hop's onion layer, on stream 0). Pure
 * codecs with exact lengths; every field is checked before use (docs/settlement.md).
 *
 *   PAY_HELLO   client → hop   key (20) | r (32) | vs (32)                "this circuit is paid by key K",
 *                              signed by K over (this hop's operator, the hop handshake's binding)
 *   PAY_LOCK    client → hop   key (20) | bytes u96 | expiresEpoch u64 | nonce u256 | r (32) | vs (32)
 *                              a lock request for this hop, to land with BandwidthCredit.openLocks
 *   PAY_RECEIPT client → hop   key (20) | epoch u64 | cells u64 | bytes u96 | r (32) | vs (32)
 *                              the key's newest cumulative receipt for this hop
 *   PAY_STOP    hop → client   reason u8                                  the hop stops serving the payer
 */
import { type Address, getAddress, type Hex } from "viem";
import { ProtocolError } from "./cell.ts";

export const PAY_HELLO_BYTES = 20 + 32 + 32;
export const PAY_LOCK_BYTES = 20 + 12 + 8 + 32 + 32 + 32;
export const PAY_RECEIPT_BYTES = 20 + 8 + 8 + 12 + 32 + 32;
export const PAY_STOP_BYTES = 1;

/** Why a hop stops serving a payer (PAY_STOP). Stable numbers: they reach logs and SOCKS clients. */
export const PayStopReason = {
  /** No receipt or lock within the allowance the hop extends. */
  noPayment: 1,
  /** The key belongs to no account. */
  unknownKey: 2,
  /** The receipt's counts disagree with what the hop carried. */
  badReceipt: 3,
  /** The payer's lock for this hop does not cover what it carried (top up, or lock more). */
  lockShort: 4,
  /** The lock's last epoch is past. */
  lockExpired: 5,
  /** The hop cannot read the chain and has no earlier reading of this key. */
  chainUnavailable: 6,
} as const;
export type PayStopReason = (typeof PayStopReason)[keyof typeof PayStopReason];

/** The name of a PAY_STOP reason, for logs and the user's error messages. */
export function payStopReasonName(reason: number): string {
  const name = Object.entries(PayStopReason).find(([, v]) => v === reason)?.[0];
  return name ? name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`) : `unknown-${reason}`;
}
const STOP_REASONS = new Set<number>(Object.values(PayStopReason));

export interface PayLock {
  key: Address;
  bytes: bigint;
  expiresEpoch: bigint;
  nonce: bigint;
  r: Hex;
  vs: Hex;
}

export interface PayReceipt {
  key: Address;
  epoch: bigint;
  cells: bigint;
  bytes: bigint;
  r: Hex;
  vs: Hex;
}

const U64 = (1n << 64n) - 1n;
const U96 = (1n << 96n) - 1n;
const U256 = (1n << 256n) - 1n;

function writeUint(buf: Buffer, offset: number, bytes: number, value: bigint, max: bigint, what: string): number {
  if (value < 0n || value > max) throw new RangeError(`${what} ${value} does not fit ${bytes} bytes`);
  buf.write(value.toString(16).padStart(bytes * 2, "0"), offset, bytes, "hex");
  return offset + bytes;
}

function readUint(buf: Buffer, offset: number, bytes: number): bigint {
  return BigInt(`0x${buf.toString("hex", offset, offset + bytes)}`);
}

function writeHex(buf: Buffer, offset: number, hex: Hex, bytes: number, what: string): number {
  const body = hex.slice(2);
  if (body.length !== bytes * 2 || !/^[0-9a-fA-F]*$/.test(body)) throw new RangeError(`${what} must be ${bytes} bytes`);
  buf.write(body, offset, bytes, "hex");
  return offset + bytes;
}

function readHex(buf: Buffer, offset: number, bytes: number): Hex {
  return `0x${buf.toString("hex", offset, offset + bytes)}`;
}

function readAddress(buf: Buffer, offset: number): Address {
  return getAddress(readHex(buf, offset, 20));
}

function exact(data: Buffer, length: number, what: string): void {
  if (data.length !== length) throw new ProtocolError(`${what} of ${data.length} bytes, expected ${length}`);
}

export interface PayHello {
  key: Address;
  r: Hex;
  vs: Hex;
}

export function encodePayHello(hello: PayHello): Buffer {
  const buf = Buffer.alloc(PAY_HELLO_BYTES);
  let o = writeHex(buf, 0, hello.key, 20, "key");
  o = writeHex(buf, o, hello.r, 32, "r");
  writeHex(buf, o, hello.vs, 32, "vs");
  return buf;
}

export function decodePayHello(data: Buffer): PayHello {
  exact(data, PAY_HELLO_BYTES, "PAY_HELLO");
  return { key: readAddress(data, 0), r: readHex(data, 20, 32), vs: readHex(data, 52, 32) };
}

export function encodePayLock(lock: PayLock): Buffer {
  const buf = Buffer.alloc(PAY_LOCK_BYTES);
  let o = writeHex(buf, 0, lock.key, 20, "key");
  o = writeUint(buf, o, 12, lock.bytes, U96, "bytes");
  o = writeUint(buf, o, 8, lock.expiresEpoch, U64, "expiresEpoch");
  o = writeUint(buf, o, 32, lock.nonce, U256, "nonce");
  o = writeHex(buf, o, lock.r, 32, "r");
  writeHex(buf, o, lock.vs, 32, "vs");
  return buf;
}

export function decodePayLock(data: Buffer): PayLock {
  exact(data, PAY_LOCK_BYTES, "PAY_LOCK");
  return {
    key: readAddress(data, 0),
    bytes: readUint(data, 20, 12),
    expiresEpoch: readUint(data, 32, 8),
    nonce: readUint(data, 40, 32),
    r: readHex(data, 72, 32),
    vs: readHex(data, 104, 32),
  };
}

export function encodePayReceipt(receipt: PayReceipt): Buffer {
  const buf = Buffer.alloc(PAY_RECEIPT_BYTES);
  let o = writeHex(buf, 0, receipt.key, 20, "key");
  o = writeUint(buf, o, 8, receipt.epoch, U64, "epoch");
  o = writeUint(buf, o, 8, receipt.cells, U64, "cells");
  o = writeUint(buf, o, 12, receipt.bytes, U96, "bytes");
  o = writeHex(buf, o, receipt.r, 32, "r");
  writeHex(buf, o, receipt.vs, 32, "vs");
  return buf;
}

export function decodePayReceipt(data: Buffer): PayReceipt {
  exact(data, PAY_RECEIPT_BYTES, "PAY_RECEIPT");
  return {
    key: readAddress(data, 0),
    epoch: readUint(data, 20, 8),
    cells: readUint(data, 28, 8),
    bytes: readUint(data, 36, 12),
    r: readHex(data, 48, 32),
    vs: readHex(data, 80, 32),
  };
}

export function encodePayStop(reason: PayStopReason): Buffer {
  return Buffer.from([reason]);
}

export function decodePayStop(data: Buffer): PayStopReason {
  exact(data, PAY_STOP_BYTES, "PAY_STOP");
  const reason = data[0] as number;
  if (!STOP_REASONS.has(reason)) throw new ProtocolError(`unknown PAY_STOP reason ${reason}`);
  return reason as PayStopReason;
}

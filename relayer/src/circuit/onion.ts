/**
 * Onion layers of a circuit: one AES-256-GCM key per hop and direction, from that hop's hybrid
 * handshake. Each layer's plaintext starts with a flag: for the hop that removes it, "this
 * message is for you / from me" or "pass the rest on" (docs/protocol.md, "Onion layers").
 */
import { CellOpener, CellSealer } from "../crypto/cipher.ts";
import type { SessionKeys } from "../crypto/handshake.ts";
import { ProtocolError } from "../wire/cell.ts";

export const LAYER_PASS = Buffer.of(0);
export const LAYER_MINE = Buffer.of(1);

/** The client's view of one hop. */
export class ClientHop {
  readonly sealForward: CellSealer;
  readonly openBackward: CellOpener;
  constructor(keys: SessionKeys, rekeyInterval?: number) {
    this.sealForward = new CellSealer(keys.forward, rekeyInterval);
    this.openBackward = new CellOpener(keys.backward, rekeyInterval);
  }
}

/** A relay's view of its hop of a circuit. */
export class RelayHop {
  readonly openForward: CellOpener;
  readonly sealBackward: CellSealer;
  constructor(keys: SessionKeys, rekeyInterval?: number) {
    this.openForward = new CellOpener(keys.forward, rekeyInterval);
    this.sealBackward = new CellSealer(keys.backward, rekeyInterval);
  }
}

/** Wraps `message` for hop `target` (0-based) and every hop before it. */
export function wrapForward(hops: readonly ClientHop[], target: number, message: readonly Buffer[]): Buffer[] {
  let parts = (hops[target] as ClientHop).sealForward.seal([LAYER_MINE, ...message]);
  for (let i = target - 1; i >= 0; i--) parts = (hops[i] as ClientHop).sealForward.seal([LAYER_PASS, ...parts]);
  return parts;
}

/** Removes backward layers until the one its sender put on; returns that hop and the message. */
export function unwrapBackward(hops: readonly ClientHop[], body: Buffer): { hop: number; message: Buffer } {
  let current = body;
  for (let i = 0; i < hops.length; i++) {
    const plain = (hops[i] as ClientHop).openBackward.open(current);
    if (plain.length < 1) throw new ProtocolError("empty onion layer");
    if (plain[0] === 1) return { hop: i, message: plain.subarray(1) };
    if (plain[0] !== 0) throw new ProtocolError("bad onion layer flag");
    current = plain.subarray(1);
  }
  throw new ProtocolError("cell came from beyond the last hop");
}

/**
 * Onion layers of a circuit: one AES-256-GCM key per hop and direction, from that hop's hybrid
 * handshake. Each layer's plaintext starts with a flag: for the hop that removes it, "this
 * message is for you / from me" or "pass the rest on" (docs/protocol.md, "Onion layers"). Each
 * layer is one AEAD pass over one contiguous buffer: a layer's plaintext is assembled in a
 * scratch buffer (a copy is cheaper than a second `update` and its output allocation).
 */
import { CellOpener, CellSealer } from "../crypto/cipher.ts";
import type { SessionKeys } from "../crypto/handshake.ts";
import { MAX_CELL_BODY_BYTES, ProtocolError } from "../wire/cell.ts";

export const LAYER_PASS = 0;
export const LAYER_MINE = 1;

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

// One per process: every use assembles, seals and is done before it returns (no await between).
const scratch = Buffer.allocUnsafeSlow(MAX_CELL_BODY_BYTES);

/**
 * Seals one layer over `flag | parts` and returns [ciphertext, tag]: what a link sends as a RELAY
 * body (its last 16 bytes are the tag the link binds).
 */
export function sealLayer(sealer: CellSealer, flag: number, parts: readonly Uint8Array[]): Buffer[] {
  scratch[0] = flag;
  let at = 1;
  for (const part of parts) {
    if (at + part.length > MAX_CELL_BODY_BYTES) throw new RangeError("onion layer larger than a cell body");
    scratch.set(part, at);
    at += part.length;
  }
  return sealer.sealDetached(scratch.subarray(0, at));
}

/** Wraps `message` for hop `target` (0-based) and every hop before it. */
export function wrapForward(hops: readonly ClientHop[], target: number, message: readonly Uint8Array[]): Buffer[] {
  let parts = sealLayer((hops[target] as ClientHop).sealForward, LAYER_MINE, message);
  for (let i = target - 1; i >= 0; i--) parts = sealLayer((hops[i] as ClientHop).sealForward, LAYER_PASS, parts);
  return parts;
}

/** Removes backward layers until the one its sender put on; returns that hop and the message. */
export function unwrapBackward(hops: readonly ClientHop[], body: Buffer): { hop: number; message: Buffer } {
  let current = body;
  for (let i = 0; i < hops.length; i++) {
    const plain = (hops[i] as ClientHop).openBackward.open(current);
    if (plain.length < 1) throw new ProtocolError("empty onion layer");
    if (plain[0] === LAYER_MINE) return { hop: i, message: plain.subarray(1) };
    if (plain[0] !== LAYER_PASS) throw new ProtocolError("bad onion layer flag");
    current = plain.subarray(1);
  }
  throw new ProtocolError("cell came from beyond the last hop");
}

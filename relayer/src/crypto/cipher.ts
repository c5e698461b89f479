/**
 * AES-256-GCM for cells, one `CellSealer`/`CellOpener` per key and direction. Nonces are a
 * 64-bit counter (never sent, never repeated): both ends count the cells of their direction, so a
 * dropped, replayed or reordered cell fails authentication. Every `REKEY_INTERVAL` cells both ends
 * ratchet the key with HKDF (no message needed), long before the 2^32 limit of random-nonce GCM
 * and well before any counter could wrap; the old key is forgotten.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from "node:crypto";

export const TAG_BYTES = 16;
export const KEY_BYTES = 32;
/** Cells per key before the ratchet: 2^20 cells is at most 16 GiB of 16 KiB cells. */
export const REKEY_INTERVAL = 2 ** 20;

const RATCHET_INFO = Buffer.from("x0tta6bl4 cell key ratchet v1");

/** Raised when a cell fails AES-GCM authentication (tampered, replayed, reordered or forged). */
export class AuthenticationError extends Error {
  override name = "AuthenticationError";
}

function ratchet(key: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", key, Buffer.alloc(0), RATCHET_INFO, KEY_BYTES));
}

abstract class CellCipherState {
  protected key: Buffer;
  protected counter = 0;
  private readonly nonce = Buffer.alloc(12);
  private readonly interval: number;
  /** Number of key ratchets so far (observability and tests). */
  generation = 0;

  constructor(key: Uint8Array, interval = REKEY_INTERVAL) {
    if (key.length !== KEY_BYTES) throw new Error(`cell key: expected ${KEY_BYTES} bytes`);
    if (!Number.isInteger(interval) || interval < 1 || interval > 2 ** 32)
      throw new Error("rekey interval out of range");
    this.key = Buffer.from(key);
    this.interval = interval;
  }

  /** The next nonce: 4 zero bytes and the big-endian 64-bit cell counter of this key. */
  protected nextNonce(): Buffer {
    if (this.counter === this.interval) {
      this.key = ratchet(this.key);
      this.counter = 0;
      this.generation++;
    }
    this.nonce.writeBigUInt64BE(BigInt(this.counter), 4);
    this.counter++;
    return this.nonce;
  }
}

export class CellSealer extends CellCipherState {
  /**
   * Encrypts the concatenation of `parts` (not copied together first) and returns the ciphertext
   * chunks followed by the 16-byte tag: their total length is the input length + 16.
   */
  seal(parts: readonly Uint8Array[]): Buffer[] {
    const nonce = this.nextNonce(); // may ratchet the key: take the nonce before the key
    const cipher = createCipheriv("aes-256-gcm", this.key, nonce);
    const out: Buffer[] = [];
    for (const part of parts) if (part.length > 0) out.push(cipher.update(part));
    cipher.final();
    out.push(cipher.getAuthTag());
    return out;
  }
}

export class CellOpener extends CellCipherState {
  /** Decrypts `sealed` (ciphertext || tag). Throws AuthenticationError and consumes the nonce. */
  open(sealed: Uint8Array): Buffer {
    const nonce = this.nextNonce();
    if (sealed.length < TAG_BYTES) throw new AuthenticationError("cell shorter than its tag");
    const end = sealed.length - TAG_BYTES;
    const decipher = createDecipheriv("aes-256-gcm", this.key, nonce);
    decipher.setAuthTag(sealed.subarray(end));
    const plain = decipher.update(sealed.subarray(0, end));
    try {
      decipher.final();
    } catch (cause) {
      throw new AuthenticationError("cell failed AES-256-GCM authentication", { cause });
    }
    return plain;
  }
}

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

  /** The next key and nonce as copies (for a seal or open that cannot happen at once). */
  protected takeNonce(): { key: Buffer; nonce: Buffer } {
    const nonce = Buffer.from(this.nextNonce());
    return { key: this.key, nonce };
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
   * Seals `plain` (one contiguous buffer: one `update`, one output allocation) and returns the
   * ciphertext and the 16-byte tag. `aad`, when given, is authenticated and not encrypted.
   */
  sealDetached(plain: Uint8Array, aad?: Uint8Array): [ciphertext: Buffer, tag: Buffer] {
    const nonce = this.nextNonce(); // may ratchet the key: take the nonce before the key
    const cipher = createCipheriv("aes-256-gcm", this.key, nonce);
    if (aad) cipher.setAAD(aad);
    const ciphertext = cipher.update(plain);
    cipher.final();
    return [ciphertext, cipher.getAuthTag()];
  }

  /**
   * Seals a pair under two consecutive nonces, the second one first: `second` (no associated
   * data) under nonce n+1, then `first` under nonce n with `aad(tag of second)`. The opener opens
   * `first` (nonce n) before it knows whether a second part follows. Returns [first ct, first
   * tag, second ct, second tag].
   */
  sealPair(first: Uint8Array, second: Uint8Array, aad: (secondTag: Buffer) => Uint8Array): Buffer[] {
    const a = this.takeNonce();
    const b = this.takeNonce();
    const c2 = createCipheriv("aes-256-gcm", b.key, b.nonce);
    const ct2 = c2.update(second);
    c2.final();
    const tag2 = c2.getAuthTag();
    const c1 = createCipheriv("aes-256-gcm", a.key, a.nonce);
    c1.setAAD(aad(tag2));
    const ct1 = c1.update(first);
    c1.final();
    return [ct1, c1.getAuthTag(), ct2, tag2];
  }

  /**
   * Encrypts the concatenation of `parts` (not copied together first) and returns the ciphertext
   * chunks followed by the 16-byte tag: their total length is the input length + 16. For
   * control messages; the cell path uses `sealDetached` on one buffer.
   */
  seal(parts: readonly Uint8Array[]): Buffer[] {
    const nonce = this.nextNonce();
    const cipher = createCipheriv("aes-256-gcm", this.key, nonce);
    const out: Buffer[] = [];
    for (const part of parts) if (part.length > 0) out.push(cipher.update(part));
    cipher.final();
    out.push(cipher.getAuthTag());
    return out;
  }
}

export class CellOpener extends CellCipherState {
  /**
   * Decrypts `ciphertext` against `tag` (and `aad`, if the sealer bound one). Throws
   * AuthenticationError; the nonce is consumed either way, so nothing after a forgery opens.
   */
  openDetached(ciphertext: Uint8Array, tag: Uint8Array, aad?: Uint8Array): Buffer {
    const nonce = this.nextNonce();
    if (tag.length !== TAG_BYTES) throw new AuthenticationError("tag of the wrong size");
    const decipher = createDecipheriv("aes-256-gcm", this.key, nonce);
    decipher.setAuthTag(tag);
    if (aad) decipher.setAAD(aad);
    const plain = decipher.update(ciphertext);
    try {
      decipher.final();
    } catch (cause) {
      throw new AuthenticationError("cell failed AES-256-GCM authentication", { cause });
    }
    return plain;
  }

  /** Decrypts `sealed` (ciphertext || tag). Throws AuthenticationError and consumes the nonce. */
  open(sealed: Uint8Array, aad?: Uint8Array): Buffer {
    if (sealed.length < TAG_BYTES) {
      this.nextNonce();
      throw new AuthenticationError("cell shorter than its tag");
    }
    const end = sealed.length - TAG_BYTES;
    return this.openDetached(sealed.subarray(0, end), sealed.subarray(end), aad);
  }
}

/**
 * Static identity keys of a relay: an X25519 key pair and an ML-KEM-768 key pair. The hash of the
 * two public keys (sha256(x25519 || ML-KEM-768 encapsulation key)) is the relay's `keysHash` in its
 * on-chain RelayerRegistry record; clients authenticate a relay against it (docs/protocol.md).
 *
 * Only crypto/ imports crypto libraries. Everything comes from node:crypto (OpenSSL 3.5 in Node
 * 24): X25519, hashes, HKDF, AES-GCM and ML-KEM-768 (FIPS 203). The `mlkem` npm package stays in
 * the tests as an independent implementation to cross-check against.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  decapsulate,
  diffieHellman,
  encapsulate,
  generateKeyPairSync,
  randomBytes,
} from "node:crypto";
import type { KeyObject } from "node:crypto";

export const X25519_PUBLIC_BYTES = 32;
export const MLKEM768_PUBLIC_BYTES = 1184;
export const MLKEM768_CIPHERTEXT_BYTES = 1088;
export const MLKEM_SEED_BYTES = 64;
export const KEYS_HASH_BYTES = 32;

/**
 * Kept for callers written when ML-KEM came from an npm package with an async constructor:
 * node:crypto needs no set-up, so this resolves at once.
 */
export async function initCrypto(): Promise<void> {}

// A private key is imported as PKCS#8 holding only the 64-byte FIPS 203 seed (d || z). Public
// keys travel raw: Node 24's "raw-public" format costs ~2 µs where SPKI DER costs ~20 µs.
const PKCS8_MLKEM768_SEED_PREFIX = Buffer.from("3054020100300b060960864801650304040204428040", "hex");

/** A Buffer view of `bytes` (no copy). */
function view(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** An ML-KEM-768 key pair: the private key and the raw 1,184-byte encapsulation key. */
export interface MlKemKeyPair {
  privateKey: KeyObject;
  publicKey: Buffer;
}

function rawMlKemPublic(key: KeyObject): Buffer {
  return key.export({ format: "raw-public" });
}

export function generateMlKem(): MlKemKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ml-kem-768");
  return { privateKey, publicKey: rawMlKemPublic(publicKey) };
}

/** FIPS 203 deterministic key generation from the 64-byte seed (what a key file stores). */
export function mlKemFromSeed(seed: Uint8Array): MlKemKeyPair {
  if (seed.length !== MLKEM_SEED_BYTES) throw new Error(`ML-KEM seed: expected ${MLKEM_SEED_BYTES} bytes`);
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_MLKEM768_SEED_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  return { privateKey, publicKey: rawMlKemPublic(createPublicKey(privateKey)) };
}

/** Parsed encapsulation keys of relays a client talks to again and again (keyed by the bytes' object). */
const parsedPublic = new WeakMap<Uint8Array, KeyObject>();

/**
 * Parses a raw encapsulation key; throws on a malformed one (FIPS 203 modulus check). With
 * `remember`, the parsed key is kept as long as the `raw` object lives (a relay's static key).
 */
export function mlKemPublicKey(raw: Uint8Array, remember = false): KeyObject {
  let key = parsedPublic.get(raw);
  if (key) return key;
  if (raw.length !== MLKEM768_PUBLIC_BYTES) throw new Error("ML-KEM-768 public key: bad length");
  key = createPublicKey({ key: view(raw), format: "raw-public", asymmetricKeyType: "ml-kem-768" });
  if (remember) parsedPublic.set(raw, key);
  return key;
}

/**
 * ML-KEM-768 encapsulation to a raw encapsulation key: the ciphertext and the 32-byte secret.
 * `remember` keeps the parsed key for the next encapsulation to the same key object.
 */
export function mlKemEncapsulate(publicKey: Uint8Array, remember = false): { ciphertext: Buffer; secret: Buffer } {
  const { ciphertext, sharedKey } = encapsulate(mlKemPublicKey(publicKey, remember));
  return { ciphertext, secret: sharedKey };
}

/**
 * ML-KEM-768 decapsulation. A wrong-length ciphertext throws; a well-formed wrong one yields an
 * unrelated secret (FIPS 203 implicit rejection), which then fails the handshake's AUTH.
 */
export function mlKemDecapsulate(privateKey: KeyObject, ciphertext: Uint8Array): Buffer {
  if (ciphertext.length !== MLKEM768_CIPHERTEXT_BYTES) throw new Error("ML-KEM-768 ciphertext: bad length");
  return decapsulate(privateKey, ciphertext);
}

/** An X25519 key pair with the public key as 32 raw bytes. */
export interface X25519KeyPair {
  privateKey: KeyObject;
  publicKey: Buffer;
}

export function generateX25519(): X25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  return { privateKey, publicKey: rawX25519Public(publicKey) };
}

function rawX25519Public(key: KeyObject): Buffer {
  return key.export({ format: "raw-public" });
}

function rawX25519Private(key: KeyObject): Buffer {
  return key.export({ format: "raw-private" });
}

export function x25519FromPrivate(raw: Buffer): X25519KeyPair {
  if (raw.length !== 32) throw new Error(`X25519 private key: expected 32 bytes, got ${raw.length}`);
  const privateKey = createPrivateKey({ key: raw, format: "raw-private", asymmetricKeyType: "x25519" });
  return { privateKey, publicKey: rawX25519Public(createPublicKey(privateKey)) };
}

/**
 * X25519(priv, pub). Throws on a low-order peer key (OpenSSL refuses an all-zero shared secret),
 * which handshakes treat as a failed handshake.
 */
export function x25519(privateKey: KeyObject, peerPublic: Uint8Array | KeyObject): Buffer {
  const publicKey = peerPublic instanceof Uint8Array ? x25519PublicKey(peerPublic) : peerPublic;
  return diffieHellman({ privateKey, publicKey });
}

/** Parsed static X25519 keys of relays a client talks to again and again (keyed by the bytes' object). */
const parsedX25519 = new WeakMap<Uint8Array, KeyObject>();

/**
 * Parses a raw 32-byte X25519 public key (once, for a key used in two DHs). With `remember`, the
 * parsed key is kept as long as the `raw` object lives (a relay's static key).
 */
export function x25519PublicKey(raw: Uint8Array, remember = false): KeyObject {
  let key = parsedX25519.get(raw);
  if (key) return key;
  if (raw.length !== X25519_PUBLIC_BYTES) throw new Error("X25519 public key: bad length");
  key = createPublicKey({ key: view(raw), format: "raw-public", asymmetricKeyType: "x25519" });
  if (remember) parsedX25519.set(raw, key);
  return key;
}

/** A relay's static keys. `seed` material is secret; never log or serialise it outside keyfiles. */
export interface StaticKeys {
  x25519: X25519KeyPair;
  /** The raw 1,184-byte ML-KEM-768 encapsulation key. */
  mlkemPublic: Buffer;
  mlkemPrivate: KeyObject;
  /** sha256(x25519 public || ML-KEM-768 public): the on-chain `keysHash`. */
  keysHash: Buffer;
  /** What a keyfile stores: 32-byte X25519 private key and 64-byte ML-KEM seed. */
  secrets: { x25519: Buffer; mlkemSeed: Buffer };
}

export function keysHashOf(x25519Public: Uint8Array, mlkemPublic: Uint8Array): Buffer {
  return createHash("sha256").update(x25519Public).update(mlkemPublic).digest();
}

/** Rebuilds static keys from their secrets (deterministic ML-KEM key derivation, FIPS 203). */
export function staticKeysFromSecrets(secrets: { x25519: Buffer; mlkemSeed: Buffer }): StaticKeys {
  if (secrets.mlkemSeed.length !== MLKEM_SEED_BYTES) throw new Error("ML-KEM seed: expected 64 bytes");
  const pair = x25519FromPrivate(secrets.x25519);
  const kem = mlKemFromSeed(secrets.mlkemSeed);
  return {
    x25519: pair,
    mlkemPublic: kem.publicKey,
    mlkemPrivate: kem.privateKey,
    keysHash: keysHashOf(pair.publicKey, kem.publicKey),
    secrets: { x25519: Buffer.from(secrets.x25519), mlkemSeed: Buffer.from(secrets.mlkemSeed) },
  };
}

export function generateStaticKeys(): StaticKeys {
  const raw = rawX25519Private(generateX25519().privateKey);
  return staticKeysFromSecrets({ x25519: raw, mlkemSeed: randomBytes(MLKEM_SEED_BYTES) });
}

/** The public half of a relay's static keys, as a client knows it. */
export interface RelayPublicKeys {
  x25519: Uint8Array;
  mlkem: Uint8Array;
  keysHash: Uint8Array;
}

export function publicKeysOf(keys: StaticKeys): RelayPublicKeys {
  return { x25519: keys.x25519.publicKey, mlkem: keys.mlkemPublic, keysHash: keys.keysHash };
}

/**
 * Checks public keys obtained from an untrusted source (a descriptor file, a peer) against the
 * expected `keysHash` (from the registry). Throws with the reason.
 */
export function verifyPublicKeys(
  x25519Public: Uint8Array,
  mlkemPublic: Uint8Array,
  keysHash: Uint8Array,
): RelayPublicKeys {
  if (x25519Public.length !== X25519_PUBLIC_BYTES) throw new Error("X25519 public key: expected 32 bytes");
  if (mlkemPublic.length !== MLKEM768_PUBLIC_BYTES) throw new Error("ML-KEM-768 public key: expected 1184 bytes");
  const actual = keysHashOf(x25519Public, mlkemPublic);
  if (!actual.equals(Buffer.from(keysHash))) {
    throw new Error(`relay keys do not match keysHash 0x${Buffer.from(keysHash).toString("hex")}`);
  }
  return { x25519: x25519Public, mlkem: mlkemPublic, keysHash: actual };
}

/**
 * Static identity keys of a relay: an X25519 key pair and an ML-KEM-768 key pair. The hash of the
 * two public keys (sha256(x25519 || ML-KEM-768 encapsulation key)) is the relay's `keysHash` in its
 * on-chain RelayerRegistry record; clients authenticate a relay against it (docs/protocol.md).
 *
 * Only crypto/ imports crypto libraries: X25519, hashes, HKDF and AES-GCM come from node:crypto
 * (OpenSSL); ML-KEM-768 comes from `mlkem` (FIPS 203).
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
} from "node:crypto";
import type { KeyObject } from "node:crypto";
import { createMlKem768 } from "mlkem";
import type { MlKemInterface } from "mlkem";

export const X25519_PUBLIC_BYTES = 32;
export const MLKEM768_PUBLIC_BYTES = 1184;
export const MLKEM768_CIPHERTEXT_BYTES = 1088;
export const MLKEM_SEED_BYTES = 64;
export const KEYS_HASH_BYTES = 32;

let kem: MlKemInterface | undefined;

/** The ML-KEM-768 instance; `initCrypto()` must have resolved once before any handshake. */
export function mlkem(): MlKemInterface {
  if (!kem) throw new Error("crypto not initialised: await initCrypto() first");
  return kem;
}

/** Loads ML-KEM-768 (its constructor is async once). Idempotent. */
export async function initCrypto(): Promise<void> {
  kem ??= await createMlKem768();
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

// DER wrappers of raw X25519 keys (RFC 8410): OpenSSL takes keys as PKCS#8 / SPKI.
const PKCS8_X25519_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

function rawX25519Public(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "spki" }).subarray(SPKI_X25519_PREFIX.length);
}

function rawX25519Private(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "pkcs8" }).subarray(PKCS8_X25519_PREFIX.length);
}

export function x25519FromPrivate(raw: Buffer): X25519KeyPair {
  if (raw.length !== 32) throw new Error(`X25519 private key: expected 32 bytes, got ${raw.length}`);
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_X25519_PREFIX, raw]),
    format: "der",
    type: "pkcs8",
  });
  return { privateKey, publicKey: rawX25519Public(createPublicKey(privateKey)) };
}

/**
 * X25519(priv, pub). Throws on a low-order peer key (OpenSSL refuses an all-zero shared secret),
 * which handshakes treat as a failed handshake.
 */
export function x25519(privateKey: KeyObject, peerPublic: Uint8Array): Buffer {
  if (peerPublic.length !== X25519_PUBLIC_BYTES) throw new Error("X25519 public key: bad length");
  const publicKey = createPublicKey({
    key: Buffer.concat([SPKI_X25519_PREFIX, peerPublic]),
    format: "der",
    type: "spki",
  });
  return diffieHellman({ privateKey, publicKey });
}

/** A relay's static keys. `seed` material is secret; never log or serialise it outside keyfiles. */
export interface StaticKeys {
  x25519: X25519KeyPair;
  mlkemPublic: Uint8Array;
  mlkemSecret: Uint8Array;
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
  const [mlkemPublic, mlkemSecret] = mlkem().deriveKeyPair(secrets.mlkemSeed);
  return {
    x25519: pair,
    mlkemPublic,
    mlkemSecret,
    keysHash: keysHashOf(pair.publicKey, mlkemPublic),
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

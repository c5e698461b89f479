/**
 * The hybrid X25519 + ML-KEM-768 handshake that keys a link and every hop of a circuit
 * (docs/protocol.md, "Handshake"). One round trip, relay authenticated, client anonymous:
 *
 *   client → relay  HELLO   = version | keysHash(relay) | X | EK_e | CT_s        (2,337 bytes)
 *   relay  → client REPLY   = Y | CT_e | AUTH                                    (1,152 bytes)
 *
 *   X, Y   ephemeral X25519 keys of client and relay; B the relay's static X25519 key
 *   EK_e   the client's ephemeral ML-KEM-768 key; CT_e encapsulates to it (forward secrecy)
 *   CT_s   encapsulates to the relay's static ML-KEM-768 key (authenticates the relay, PQ)
 *
 *   ikm    = DH(x,Y) | DH(x,B) | K_e | K_s              (each 32 bytes)
 *   okm    = HKDF-SHA-256(ikm, salt = PROTOCOL_ID, info = "keys" | sha256(transcript), 128)
 *   keys   = forward (client→relay) | backward (relay→client) | AUTH | BINDING
 *
 * BINDING is known to the two ends only; a payer signs it in its PAY_HELLO to this hop
 * (docs/settlement.md), so that the hello cannot be made for, or moved to, another circuit.
 *
 * Secrecy holds if either X25519 or ML-KEM-768 holds; only the holder of both static secret keys
 * can compute AUTH (KEMTLS/PQ-ntor-style implicit authentication, ntor-style DH(x,B)); the
 * ephemeral halves give forward secrecy against a later quantum attacker; every byte of both
 * messages and the relay's identity are in the transcript. A replayed HELLO gets a fresh Y and
 * CT_e, so it yields keys that the replayer cannot compute.
 */
import { createHash, hkdfSync, timingSafeEqual } from "node:crypto";
import {
  KEYS_HASH_BYTES,
  MLKEM768_CIPHERTEXT_BYTES,
  MLKEM768_PUBLIC_BYTES,
  X25519_PUBLIC_BYTES,
  generateMlKem,
  generateX25519,
  mlKemDecapsulate,
  mlKemEncapsulate,
  x25519,
  x25519PublicKey,
} from "./keys.ts";
import type { MlKemKeyPair, RelayPublicKeys, StaticKeys, X25519KeyPair } from "./keys.ts";

export const HANDSHAKE_VERSION = 1;
export const HELLO_BYTES =
  1 + KEYS_HASH_BYTES + X25519_PUBLIC_BYTES + MLKEM768_PUBLIC_BYTES + MLKEM768_CIPHERTEXT_BYTES;
export const REPLY_BYTES = X25519_PUBLIC_BYTES + MLKEM768_CIPHERTEXT_BYTES + 32;

const PROTOCOL_ID = Buffer.from("x0tta6bl4 hybrid x25519 mlkem768 handshake v1");
const KEYS_INFO = Buffer.from("keys");

/** Raised for any handshake failure; the message never contains secret material. */
export class HandshakeError extends Error {
  override name = "HandshakeError";
}

/** The two directional 32-byte AES-256-GCM keys a handshake yields, and its 32-byte binding. */
export interface SessionKeys {
  forward: Buffer;
  backward: Buffer;
  /** A secret of this handshake's two ends that names it (what a PAY_HELLO signs). */
  binding: Buffer;
}

/** Client state between HELLO and REPLY; single use. */
export interface ClientHandshake {
  hello: Buffer;
  /** Completes with the relay's REPLY; throws HandshakeError if the relay is not who it claims. */
  finish(reply: Uint8Array): SessionKeys;
}

function derive(ikm: Uint8Array[], transcript: Uint8Array[]): { keys: SessionKeys; auth: Buffer } {
  const th = createHash("sha256");
  for (const part of transcript) th.update(part);
  const info = Buffer.concat([KEYS_INFO, th.digest()]);
  const okm = Buffer.from(hkdfSync("sha256", Buffer.concat(ikm), PROTOCOL_ID, info, 128));
  return {
    keys: { forward: okm.subarray(0, 32), backward: okm.subarray(32, 64), binding: okm.subarray(96, 128) },
    auth: okm.subarray(64, 96),
  };
}

/** A client's single-use ephemeral keys: an X25519 pair and an ML-KEM-768 pair. */
interface Ephemeral {
  x25519: X25519KeyPair;
  kem: MlKemKeyPair;
}

/**
 * Ephemeral key pairs generated ahead of time, off the critical path of a circuit build (the
 * key generations are a third of the client's handshake CPU, and the relay's X25519 pair a sixth
 * of its own). Each pair is used once and dropped; a pool refills itself one pair per event-loop
 * turn once it has been used. Forward secrecy is unchanged: the secrets live in memory only, as
 * they would during a handshake.
 */
class EphemeralPool<T> {
  private readonly pairs: T[] = [];
  private refilling = false;
  private readonly size: number;
  private readonly generate: () => T;

  constructor(size: number, generate: () => T) {
    this.size = size;
    this.generate = generate;
  }

  take(): T {
    const pair = this.pairs.pop() ?? this.generate();
    this.refill();
    return pair;
  }

  private refill(): void {
    if (this.refilling) return;
    this.refilling = true;
    const step = () => {
      if (this.pairs.length >= this.size) {
        this.refilling = false;
        return;
      }
      this.pairs.push(this.generate());
      setImmediate(step);
    };
    setImmediate(step);
  }
}

const clientEphemerals = new EphemeralPool<Ephemeral>(6, () => ({ x25519: generateX25519(), kem: generateMlKem() }));
const relayEphemerals = new EphemeralPool<X25519KeyPair>(6, generateX25519);

/** Starts a handshake with the relay whose static public keys (checked against its keysHash) are `relay`. */
export function startClientHandshake(relay: RelayPublicKeys): ClientHandshake {
  const { x25519: eph, kem } = clientEphemerals.take();
  // The relay's static keys: parsed once per RelayPublicKeys object, not once per handshake.
  const { ciphertext: ctS, secret: kS } = mlKemEncapsulate(relay.mlkem, true);
  const dhXB = x25519(eph.privateKey, x25519PublicKey(relay.x25519, true));
  const hello = Buffer.concat([Buffer.of(HANDSHAKE_VERSION), relay.keysHash, eph.publicKey, kem.publicKey, ctS]);
  let used = false;
  return {
    hello,
    finish(reply) {
      if (used) throw new HandshakeError("handshake state already used");
      used = true;
      if (reply.length !== REPLY_BYTES)
        throw new HandshakeError(`reply: expected ${REPLY_BYTES} bytes, got ${reply.length}`);
      const y = reply.subarray(0, 32);
      const ctE = reply.subarray(32, 32 + MLKEM768_CIPHERTEXT_BYTES);
      const auth = reply.subarray(32 + MLKEM768_CIPHERTEXT_BYTES);
      let dhXY: Buffer;
      let kE: Buffer;
      try {
        dhXY = x25519(eph.privateKey, y);
        kE = mlKemDecapsulate(kem.privateKey, ctE);
      } catch (cause) {
        throw new HandshakeError("reply carries an invalid key", { cause });
      }
      const derived = derive([dhXY, dhXB, kE, kS], [hello, y, ctE]);
      if (!timingSafeEqual(derived.auth, auth))
        throw new HandshakeError("relay failed to authenticate (AUTH mismatch)");
      return derived.keys;
    },
  };
}

/**
 * The relay's side: checks HELLO is for these static keys and answers. Throws HandshakeError on a
 * malformed HELLO or one addressed to another relay.
 */
export function respondToHandshake(keys: StaticKeys, hello: Uint8Array): { reply: Buffer; keys: SessionKeys } {
  if (hello.length !== HELLO_BYTES)
    throw new HandshakeError(`hello: expected ${HELLO_BYTES} bytes, got ${hello.length}`);
  if (hello[0] !== HANDSHAKE_VERSION) throw new HandshakeError(`hello: unsupported version ${hello[0]}`);
  let offset = 1;
  const take = (n: number) => hello.subarray(offset, (offset += n));
  const id = take(KEYS_HASH_BYTES);
  const x = take(X25519_PUBLIC_BYTES);
  const ekE = take(MLKEM768_PUBLIC_BYTES);
  const ctS = take(MLKEM768_CIPHERTEXT_BYTES);
  if (!timingSafeEqual(id, keys.keysHash)) throw new HandshakeError("hello is addressed to another relay");
  const eph = relayEphemerals.take();
  let ikm: Uint8Array[];
  let ctE: Buffer;
  try {
    const peer = x25519PublicKey(x);
    const dhXY = x25519(eph.privateKey, peer);
    const dhXB = x25519(keys.x25519.privateKey, peer);
    const kS = mlKemDecapsulate(keys.mlkemPrivate, ctS);
    const encapsulated = mlKemEncapsulate(ekE);
    ctE = encapsulated.ciphertext;
    ikm = [dhXY, dhXB, encapsulated.secret, kS];
  } catch (cause) {
    throw new HandshakeError("hello carries an invalid key", { cause });
  }
  const derived = derive(ikm, [Buffer.from(hello), eph.publicKey, ctE]);
  return { reply: Buffer.concat([eph.publicKey, ctE, derived.auth]), keys: derived.keys };
}

/**
 * Signature checks of a paid relay, fast: the public key of each payer's client key is learnt once
 * — from its PAY_HELLO, which proves that the key signed for this circuit's hop handshake — and
 * every later receipt of that key is verified natively (node:crypto: OpenSSL's ECDSA over
 * secp256k1 with Keccak-256, ~0.3 ms) instead of recovered in JavaScript (~1.5 ms).
 *
 * Verification does not check a signature's recovery bit `v` (OpenSSL has no recovery): a payer
 * could flip it, and the contract, which recovers, would then refuse the receipt. So the relay
 * never relies on the payer's `v`: `withRecoveredParity` sets it from the known key when a receipt
 * is submitted (settlement, once per key and epoch). `s` must be in the lower half of the order,
 * as OpenZeppelin's ECDSA requires.
 */
import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import {
  type Address,
  domainSeparator,
  type Hex,
  hashTypedData,
  keccak256,
  recoverAddress,
  recoverPublicKey,
  toHex,
} from "viem";
import { publicKeyToAddress } from "viem/accounts";
import type { PayHello } from "../wire/payment.ts";
import { type Eip712Domain, expand, PAY_HELLO_TYPES, RECEIPT_TYPES, type SignedReceipt } from "./receipts.ts";

/** secp256k1's group order and half of it (EIP-2: signatures with s above it are refused). */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_N = N / 2n;
const S_MASK = (1n << 255n) - 1n;

const RECEIPT_TYPEHASH = Buffer.from(
  keccak256(toHex("Receipt(address relayer,uint64 epoch,uint64 cells,uint96 bytes)")).slice(2),
  "hex",
);

function word(value: bigint): Buffer {
  return Buffer.from(value.toString(16).padStart(64, "0"), "hex");
}

function keyObjectOf(publicKey: Hex): KeyObject {
  const raw = Buffer.from(publicKey.slice(2), "hex"); // 0x04 | x | y
  return createPublicKey({
    key: {
      kty: "EC",
      crv: "secp256k1",
      x: raw.subarray(1, 33).toString("base64url"),
      y: raw.subarray(33, 65).toString("base64url"),
    },
    format: "jwk",
  });
}

export class ClientKeys {
  readonly #domain: Eip712Domain;
  readonly #relayer: Address;
  /** 0x19 0x01 | domain separator: the start of every receipt digest's preimage. */
  readonly #prefix: Buffer;
  readonly #relayerWord: Buffer;
  readonly #max: number;
  readonly #keys = new Map<string, KeyObject>();
  /** How receipts were checked (tests and the bench). */
  readonly counts = { native: 0, recovered: 0 };

  constructor(domain: Eip712Domain, relayer: Address, options: { maxKeys?: number } = {}) {
    this.#domain = domain;
    this.#relayer = relayer;
    this.#prefix = Buffer.concat([Buffer.from([0x19, 0x01]), Buffer.from(domainSeparator({ domain }).slice(2), "hex")]);
    this.#relayerWord = word(BigInt(relayer));
    this.#max = options.maxKeys ?? 65_536;
  }

  #learn(address: Address, publicKey: Hex): void {
    const id = address.toLowerCase();
    if (this.#keys.has(id)) return;
    if (this.#keys.size >= this.#max) this.#keys.delete(this.#keys.keys().next().value as string);
    this.#keys.set(id, keyObjectOf(publicKey));
  }

  /** Whether `hello` is signed by its key for this relay and this hop handshake's `binding`. */
  async checkHello(binding: Uint8Array, hello: PayHello): Promise<boolean> {
    const hash = hashTypedData({
      domain: this.#domain,
      types: PAY_HELLO_TYPES,
      primaryType: "PayHello",
      message: { relayer: this.#relayer, binding: `0x${Buffer.from(binding).toString("hex")}` },
    });
    try {
      const publicKey = await recoverPublicKey({ hash, signature: expand(hello.r, hello.vs) });
      if (publicKeyToAddress(publicKey).toLowerCase() !== hello.key.toLowerCase()) return false;
      this.#learn(hello.key, publicKey);
      return true;
    } catch {
      return false; // malformed (r = 0, not on the curve)
    }
  }

  /** The EIP-712 digest preimage of a receipt for this relay. */
  #preimage(epoch: bigint, receipt: SignedReceipt): Buffer {
    const structHash = createHash("keccak-256")
      .update(RECEIPT_TYPEHASH)
      .update(this.#relayerWord)
      .update(word(epoch))
      .update(word(receipt.cells))
      .update(word(receipt.bytes_))
      .digest();
    return Buffer.concat([this.#prefix, structHash]);
  }

  /** Whether `receipt` (for `epoch`) is signed by its key, `v` aside (see the module comment). */
  async verifyReceipt(epoch: bigint, receipt: SignedReceipt): Promise<boolean> {
    const r = BigInt(receipt.r);
    const s = BigInt(receipt.vs) & S_MASK;
    if (r === 0n || r >= N || s === 0n || s > HALF_N) return false;
    const id = receipt.key.toLowerCase();
    const key = this.#keys.get(id);
    const preimage = this.#preimage(epoch, receipt);
    if (key) {
      this.counts.native++;
      const signature = Buffer.concat([word(r), word(s)]);
      return verify("keccak-256", preimage, { key, dsaEncoding: "ieee-p1363" }, signature);
    }
    // A key not seen in a hello here (a restart, or a hello still being checked): recover once.
    this.counts.recovered++;
    try {
      const hash = keccak256(preimage);
      const publicKey = await recoverPublicKey({ hash, signature: expand(receipt.r, receipt.vs) });
      if (publicKeyToAddress(publicKey).toLowerCase() !== id) return false;
      this.#learn(receipt.key, publicKey);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * `receipt` with the recovery bit that makes EpochRewards recover its key (the payer's own `v` may
 * be wrong: natively verified receipts never checked it). Unchanged if neither bit recovers the key.
 */
export async function withRecoveredParity<T extends SignedReceipt>(
  domain: Eip712Domain,
  relayer: Address,
  epoch: bigint,
  receipt: T,
): Promise<T> {
  const hash = hashTypedData({
    domain,
    types: RECEIPT_TYPES,
    primaryType: "Receipt",
    message: { relayer, epoch, cells: receipt.cells, bytes: receipt.bytes_ },
  });
  const flipped = toHex(BigInt(receipt.vs) ^ (1n << 255n), { size: 32 });
  for (const vs of [receipt.vs, flipped]) {
    try {
      const recovered = await recoverAddress({ hash, signature: expand(receipt.r, vs) });
      if (recovered.toLowerCase() === receipt.key.toLowerCase()) return { ...receipt, vs };
    } catch {
      // not recoverable with this bit
    }
  }
  return receipt;
}

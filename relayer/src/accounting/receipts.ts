/**
 * The EIP-712 messages of payments: client-key authorisations, lock requests, payer receipts and
 * uptime attestations, as BandwidthCredit and EpochRewards verify them.
 *
 * A payer locks part of its credit for each relay before the relay serves it (a lock request
 * signed by a client key, or a `lock` transaction). A receipt is signed by the payer's client key
 * and says "on my channel with relayer R, you have carried `cells` cells in all and I owe you
 * `bytes` bytes in all, as of epoch E": both counts are cumulative over the channel's life, so the
 * relayer keeps only the latest receipt and the contract pays only what is new. By the protocol a
 * cell of `cellBytes` bytes on a circuit of `hops` hops owes cellBytes / hops bytes to each hop, so
 * a GB carried through 3 hops costs the payer 1 GB in all. The field names and types here must
 * match the contracts' typehashes; test/contracts checks them against the deployed contracts.
 */
import {
  type Address,
  type Hex,
  type LocalAccount,
  parseSignature,
  recoverTypedDataAddress,
  signatureToCompactSignature,
} from "viem";

export const RECEIPT_TYPES = {
  Receipt: [
    { name: "relayer", type: "address" },
    { name: "epoch", type: "uint64" },
    { name: "cells", type: "uint64" },
    { name: "bytes", type: "uint96" },
  ],
} as const;

export const UPTIME_TYPES = {
  Uptime: [
    { name: "relayer", type: "address" },
    { name: "epoch", type: "uint64" },
    { name: "probes", type: "uint32" },
    { name: "answered", type: "uint32" },
    { name: "measurements", type: "bytes32" },
  ],
} as const;

/**
 * A payer's PAY_HELLO: client key K pays for the circuit whose hop handshake with `relayer` has
 * this `binding` (crypto/handshake.ts). Never verified on-chain; a type of its own, so that it
 * cannot be replayed as a receipt or a lock request.
 */
export const PAY_HELLO_TYPES = {
  PayHello: [
    { name: "relayer", type: "address" },
    { name: "binding", type: "bytes32" },
  ],
} as const;

export const CLIENT_KEY_TYPES = {
  ClientKeyAuthorization: [
    { name: "account", type: "address" },
    { name: "key", type: "address" },
    { name: "capPerEpoch", type: "uint96" },
  ],
} as const;

export const LOCK_TYPES = {
  Lock: [
    { name: "relayer", type: "address" },
    { name: "bytes", type: "uint96" },
    { name: "expiresEpoch", type: "uint64" },
    { name: "nonce", type: "uint256" },
  ],
} as const;

export interface Eip712Domain {
  name: string;
  version: string;
  chainId: number;
  verifyingContract: Address;
}

/** Domain of receipts and uptime attestations. */
export function epochRewardsDomain(chainId: number, verifyingContract: Address): Eip712Domain {
  return { name: "x0tta6bl4 EpochRewards", version: "1", chainId, verifyingContract };
}

/** Domain of client-key authorisation proofs. */
export function bandwidthCreditDomain(chainId: number, verifyingContract: Address): Eip712Domain {
  return { name: "x0tta6bl4 BandwidthCredit", version: "1", chainId, verifyingContract };
}

export interface ReceiptFields {
  relayer: Address;
  epoch: bigint;
  /** Cells carried on the channel so far (cumulative). */
  cells: bigint;
  /** Bytes owed on the channel so far (cumulative). */
  bytes: bigint;
}

/** A receipt as EpochRewards.submitReceipts takes it (EIP-2098 compact signature). */
export interface SignedReceipt {
  key: Address;
  cells: bigint;
  bytes_: bigint;
  r: Hex;
  vs: Hex;
}

export interface LockFields {
  relayer: Address;
  bytes: bigint;
  expiresEpoch: bigint;
  nonce: bigint;
}

/** A lock request as BandwidthCredit.openLocks takes it. */
export interface SignedLockRequest {
  key: Address;
  relayer: Address;
  bytes_: bigint;
  expiresEpoch: bigint;
  nonce: bigint;
  r: Hex;
  vs: Hex;
}

export interface UptimeFields {
  relayer: Address;
  epoch: bigint;
  /** Probes the attester sent to `relayer` during the epoch, and how many were answered. */
  probes: number;
  answered: number;
  /** Commitment to the attester's probe log (for example the hash of its records). */
  measurements: Hex;
}

/** An attestation as EpochRewards.submitUptime takes it. */
export interface SignedAttestation {
  signer: Address;
  probes: number;
  answered: number;
  measurements: Hex;
  r: Hex;
  vs: Hex;
}

function compact(signature: Hex): { r: Hex; vs: Hex } {
  const { r, yParityAndS } = signatureToCompactSignature(parseSignature(signature));
  return { r, vs: yParityAndS };
}

/** The 65-byte signature (r | s | v) of a compact one (r, vs: EIP-2098). */
export function expand(r: Hex, vs: Hex): Hex {
  const yParity = BigInt(vs) >> 255n;
  const s = BigInt(vs) & ((1n << 255n) - 1n);
  return `0x${r.slice(2)}${s.toString(16).padStart(64, "0")}${yParity === 1n ? "1c" : "1b"}`;
}

/** Signs a receipt with a payer's client key. */
export async function signReceipt(
  key: LocalAccount,
  domain: Eip712Domain,
  fields: ReceiptFields,
): Promise<SignedReceipt> {
  const signature = await key.signTypedData({ domain, types: RECEIPT_TYPES, primaryType: "Receipt", message: fields });
  return { key: key.address, cells: fields.cells, bytes_: fields.bytes, ...compact(signature) };
}

/** Signs a PAY_HELLO for the hop of `relayer` whose handshake has `binding` (domain: EpochRewards). */
export async function signPayHello(
  key: LocalAccount,
  domain: Eip712Domain,
  relayer: Address,
  binding: Uint8Array,
): Promise<{ key: Address; r: Hex; vs: Hex }> {
  const signature = await key.signTypedData({
    domain,
    types: PAY_HELLO_TYPES,
    primaryType: "PayHello",
    message: { relayer, binding: `0x${Buffer.from(binding).toString("hex")}` },
  });
  return { key: key.address, ...compact(signature) };
}

/** Signs a lock request with a payer's client key (domain: BandwidthCredit). */
export async function signLockRequest(
  key: LocalAccount,
  domain: Eip712Domain,
  fields: LockFields,
): Promise<SignedLockRequest> {
  const signature = await key.signTypedData({ domain, types: LOCK_TYPES, primaryType: "Lock", message: fields });
  return {
    key: key.address,
    relayer: fields.relayer,
    bytes_: fields.bytes,
    expiresEpoch: fields.expiresEpoch,
    nonce: fields.nonce,
    ...compact(signature),
  };
}

/** True if `receipt` is signed by its `key` for `relayer` and `epoch` (what a relay checks on arrival). */
export async function verifyReceipt(
  domain: Eip712Domain,
  relayer: Address,
  epoch: bigint,
  receipt: SignedReceipt,
): Promise<boolean> {
  const recovered = await recoverTypedDataAddress({
    domain,
    types: RECEIPT_TYPES,
    primaryType: "Receipt",
    message: { relayer, epoch, cells: receipt.cells, bytes: receipt.bytes_ },
    signature: expand(receipt.r, receipt.vs),
  });
  return recovered.toLowerCase() === receipt.key.toLowerCase();
}

/** True if `lock` is signed by its `key` for `relayer` (what a relay checks before landing it). */
export async function verifyLockRequest(
  domain: Eip712Domain,
  relayer: Address,
  lock: { key: Address; bytes: bigint; expiresEpoch: bigint; nonce: bigint; r: Hex; vs: Hex },
): Promise<boolean> {
  const recovered = await recoverTypedDataAddress({
    domain,
    types: LOCK_TYPES,
    primaryType: "Lock",
    message: { relayer, bytes: lock.bytes, expiresEpoch: lock.expiresEpoch, nonce: lock.nonce },
    signature: expand(lock.r, lock.vs),
  });
  return recovered.toLowerCase() === lock.key.toLowerCase();
}

/** Signs an uptime attestation with a relayer's node signer. */
export async function signUptime(
  signer: LocalAccount,
  domain: Eip712Domain,
  fields: UptimeFields,
): Promise<SignedAttestation> {
  const signature = await signer.signTypedData({ domain, types: UPTIME_TYPES, primaryType: "Uptime", message: fields });
  return {
    signer: signer.address,
    probes: fields.probes,
    answered: fields.answered,
    measurements: fields.measurements,
    ...compact(signature),
  };
}

/** The address an uptime attestation's signature recovers to (throws on a malformed signature). */
export function recoverUptimeSigner(
  domain: Eip712Domain,
  fields: UptimeFields,
  signature: { r: Hex; vs: Hex },
): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: UPTIME_TYPES,
    primaryType: "Uptime",
    message: fields,
    signature: expand(signature.r, signature.vs),
  });
}

/**
 * Proof that `key` agrees to sign for `account` and to lock at most `capPerEpoch` bytes an epoch,
 * for BandwidthCredit.authorizeClientKey.
 */
export function signClientKeyAuthorization(
  key: LocalAccount,
  domain: Eip712Domain,
  account: Address,
  capPerEpoch: bigint,
): Promise<Hex> {
  return key.signTypedData({
    domain,
    types: CLIENT_KEY_TYPES,
    primaryType: "ClientKeyAuthorization",
    message: { account, key: key.address, capPerEpoch },
  });
}

/** Attestations in the order EpochRewards requires (by signer, strictly ascending). */
export function sortAttestations<T extends Pick<SignedAttestation, "signer">>(attestations: readonly T[]): T[] {
  return [...attestations].sort((a, b) => (BigInt(a.signer) < BigInt(b.signer) ? -1 : 1));
}

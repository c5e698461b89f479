/**
 * Payer receipts and uptime attestations: the EIP-712 messages that EpochRewards verifies.
 *
 * A receipt is signed by a payer's client key and says "relayer R carried `cells` cells of
 * `cellSize` bytes for me in epoch E, on a circuit of `hops` hops". Counts are cumulative per
 * (relayer, epoch, key, hops): the relayer keeps only the latest and submits it once, in a batch
 * sorted by (key, hops). The field names and types here must match EpochRewards.RECEIPT_TYPEHASH
 * and UPTIME_TYPEHASH; test/contracts checks them against the deployed contract.
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
    { name: "cellSize", type: "uint16" },
    { name: "hops", type: "uint8" },
  ],
} as const;

export const UPTIME_TYPES = {
  Uptime: [
    { name: "relayer", type: "address" },
    { name: "epoch", type: "uint64" },
    { name: "uptimeBps", type: "uint16" },
  ],
} as const;

export const CLIENT_KEY_TYPES = {
  ClientKeyAuthorization: [
    { name: "account", type: "address" },
    { name: "key", type: "address" },
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
  cells: bigint;
  cellSize: number;
  hops: number;
}

/** A receipt as EpochRewards.submitReceipts takes it (EIP-2098 compact signature). */
export interface SignedReceipt {
  key: Address;
  cells: bigint;
  cellSize: number;
  hops: number;
  r: Hex;
  vs: Hex;
}

export interface UptimeFields {
  relayer: Address;
  epoch: bigint;
  uptimeBps: number;
}

/** An attestation as EpochRewards.submitUptime takes it. */
export interface SignedAttestation {
  signer: Address;
  uptimeBps: number;
  r: Hex;
  vs: Hex;
}

function compact(signature: Hex): { r: Hex; vs: Hex } {
  const { r, yParityAndS } = signatureToCompactSignature(parseSignature(signature));
  return { r, vs: yParityAndS };
}

function expand(r: Hex, vs: Hex): Hex {
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
  return { key: key.address, cells: fields.cells, cellSize: fields.cellSize, hops: fields.hops, ...compact(signature) };
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
    message: { relayer, epoch, cells: receipt.cells, cellSize: receipt.cellSize, hops: receipt.hops },
    signature: expand(receipt.r, receipt.vs),
  });
  return recovered.toLowerCase() === receipt.key.toLowerCase();
}

/** Signs an uptime attestation with a relayer's node signer. */
export async function signUptime(
  signer: LocalAccount,
  domain: Eip712Domain,
  fields: UptimeFields,
): Promise<SignedAttestation> {
  const signature = await signer.signTypedData({ domain, types: UPTIME_TYPES, primaryType: "Uptime", message: fields });
  return { signer: signer.address, uptimeBps: fields.uptimeBps, ...compact(signature) };
}

/** Proof that `key` agrees to sign for `account`, for BandwidthCredit.authorizeClientKey. */
export function signClientKeyAuthorization(key: LocalAccount, domain: Eip712Domain, account: Address): Promise<Hex> {
  return key.signTypedData({
    domain,
    types: CLIENT_KEY_TYPES,
    primaryType: "ClientKeyAuthorization",
    message: { account, key: key.address },
  });
}

/** Sort key EpochRewards enforces: (key << 8) | hops, strictly ascending within an epoch. */
export function receiptSortKey(receipt: Pick<SignedReceipt, "key" | "hops">): bigint {
  return (BigInt(receipt.key) << 8n) | BigInt(receipt.hops);
}

/** Receipts in the order EpochRewards requires. */
export function sortReceipts<T extends Pick<SignedReceipt, "key" | "hops">>(receipts: readonly T[]): T[] {
  return [...receipts].sort((a, b) => {
    const ka = receiptSortKey(a);
    const kb = receiptSortKey(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

/** Attestations in the order EpochRewards requires (by signer, strictly ascending). */
export function sortAttestations<T extends Pick<SignedAttestation, "signer">>(attestations: readonly T[]): T[] {
  return [...attestations].sort((a, b) => (BigInt(a.signer) < BigInt(b.signer) ? -1 : 1));
}

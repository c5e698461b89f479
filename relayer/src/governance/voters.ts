/**
 * Joining the electorate: find the caller's EAS attestation and register with it in the
 * VoterRegistry (docs/governance.md). Registration is permissionless and self-service: the
 * registry checks the attestation on-chain (schema, attester, recipient = the caller, not revoked,
 * not expired), so this module only finds the uid and sends the one transaction.
 *
 * The uid is found from EAS's `Attested` events (recipient, attester and schema are indexed). On
 * Base Sepolia, Coinbase's indexer (`getAttestationUid(recipient, schema)` at the address in
 * docs/governance.md) answers the same question without a log query; pass `fromBlock` to bound the
 * log scan on public RPCs.
 */
import {
  type Account,
  type Address,
  type Hex,
  type PublicClient,
  type WalletClient,
  parseAbiItem,
  zeroHash,
} from "viem";

const ATTESTED = parseAbiItem(
  "event Attested(address indexed recipient, address indexed attester, bytes32 uid, bytes32 indexed schemaUID)",
);
const GET_ATTESTATION = [
  {
    type: "function",
    name: "getAttestation",
    stateMutability: "view",
    inputs: [{ name: "uid", type: "bytes32" }],
    outputs: [
      {
        type: "tuple",
        components: [
          { name: "uid", type: "bytes32" },
          { name: "schema", type: "bytes32" },
          { name: "time", type: "uint64" },
          { name: "expirationTime", type: "uint64" },
          { name: "revocationTime", type: "uint64" },
          { name: "refUID", type: "bytes32" },
          { name: "recipient", type: "address" },
          { name: "attester", type: "address" },
          { name: "revocable", type: "bool" },
          { name: "data", type: "bytes" },
        ],
      },
    ],
  },
] as const;
const REGISTRY_ABI = [
  {
    type: "function",
    name: "register",
    stateMutability: "nonpayable",
    inputs: [
      { name: "source", type: "address" },
      { name: "proof", type: "bytes" },
    ],
    outputs: [],
  },
  {
    type: "function",
    name: "isRegistered",
    stateMutability: "view",
    inputs: [{ name: "voter", type: "address" }],
    outputs: [{ type: "bool" }],
  },
] as const;

export class VoterError extends Error {
  override name = "VoterError";
}

export interface AttestationQuery {
  eas: Address;
  schema: Hex;
  attester: Address;
  recipient: Address;
  fromBlock?: bigint;
}

/**
 * The newest attestation to `recipient` by `attester` of `schema` that is neither revoked nor
 * expired now, or undefined.
 */
export async function findAttestation(client: PublicClient, q: AttestationQuery): Promise<Hex | undefined> {
  const logs = await client.getLogs({
    address: q.eas,
    event: ATTESTED,
    args: { recipient: q.recipient, attester: q.attester, schemaUID: q.schema },
    fromBlock: q.fromBlock ?? 0n,
  });
  const now = (await client.getBlock()).timestamp;
  for (const log of [...logs].reverse()) {
    const uid = log.args.uid;
    if (!uid || uid === zeroHash) continue;
    const a = await client.readContract({
      address: q.eas,
      abi: GET_ATTESTATION,
      functionName: "getAttestation",
      args: [uid],
    });
    if (a.revocationTime === 0n && (a.expirationTime === 0n || a.expirationTime > now)) return uid;
  }
  return undefined;
}

/**
 * Registers the wallet's account with its attestation; returns the transaction hash. Refuses, with
 * a one-line reason, an account that is already registered or has no valid attestation.
 */
export async function registerVoter(
  client: PublicClient,
  wallet: WalletClient & { account: Account },
  args: { registry: Address; source: Address } & Omit<AttestationQuery, "recipient">,
): Promise<{ hash: Hex; uid: Hex }> {
  const voter = wallet.account.address;
  if (
    await client.readContract({
      address: args.registry,
      abi: REGISTRY_ABI,
      functionName: "isRegistered",
      args: [voter],
    })
  )
    throw new VoterError(`${voter} is already a registered voter`);
  const uid = await findAttestation(client, { ...args, recipient: voter });
  if (!uid)
    throw new VoterError(
      `no valid attestation of schema ${args.schema} by ${args.attester} to ${voter}: get verified first (docs/governance.md)`,
    );
  const hash = await wallet.writeContract({
    address: args.registry,
    abi: REGISTRY_ABI,
    functionName: "register",
    args: [args.source, uid],
    account: wallet.account,
    chain: wallet.chain,
  });
  return { hash, uid };
}

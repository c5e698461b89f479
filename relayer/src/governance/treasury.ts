/**
 * Council transactions of the treasury Safe, passed from signer to signer as a JSON file: one
 * member proposes (the Safe transaction with its nonce), each signs it (EIP-712 SafeTx), and
 * anyone executes once the Safe's threshold of owners has signed. This is how a passed Snapshot
 * vote reaches the treasury (docs/governance.md). The Safe's CouncilGuard lets the council make
 * only X0T transfers (and plain ETH payments) within a cap per period that the DAO sets; anything
 * else — administration of the Safe, delegate, approve, other contracts — is refused and goes
 * through on-chain governance instead. `proposeTokenTransfer` reads the guard and refuses a payout
 * above what is left of the period's cap, before anyone signs.
 *
 * Written on viem against the Safe 1.5 ABI; Safe's protocol-kit needs the full set of Safe
 * deployment addresses (MultiSend, SignMessageLib, …) that a council transfer never uses.
 */
import {
  type Account,
  type Address,
  type Hex,
  type PublicClient,
  type WalletClient,
  encodeFunctionData,
  erc20Abi,
  getAddress,
  isAddress,
  zeroAddress,
} from "viem";

export const SAFE_ABI = [
  { type: "function", name: "nonce", stateMutability: "view", inputs: [], outputs: [{ type: "uint256" }] },
  { type: "function", name: "getThreshold", stateMutability: "view", inputs: [], outputs: [{ type: "uint256" }] },
  { type: "function", name: "getOwners", stateMutability: "view", inputs: [], outputs: [{ type: "address[]" }] },
  {
    type: "function",
    name: "execTransaction",
    stateMutability: "payable",
    inputs: [
      { name: "to", type: "address" },
      { name: "value", type: "uint256" },
      { name: "data", type: "bytes" },
      { name: "operation", type: "uint8" },
      { name: "safeTxGas", type: "uint256" },
      { name: "baseGas", type: "uint256" },
      { name: "gasPrice", type: "uint256" },
      { name: "gasToken", type: "address" },
      { name: "refundReceiver", type: "address" },
      { name: "signatures", type: "bytes" },
    ],
    outputs: [{ type: "bool" }],
  },
] as const;

/** EIP-712 types of a Safe transaction (domain: chainId + the Safe's address). */
export const SAFE_TX_TYPES = {
  SafeTx: [
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "data", type: "bytes" },
    { name: "operation", type: "uint8" },
    { name: "safeTxGas", type: "uint256" },
    { name: "baseGas", type: "uint256" },
    { name: "gasPrice", type: "uint256" },
    { name: "gasToken", type: "address" },
    { name: "refundReceiver", type: "address" },
    { name: "nonce", type: "uint256" },
  ],
} as const;

/** The file the council passes around. Numbers are decimal strings (JSON has no bigint). */
export interface SafeTxFile {
  version: 1;
  chainId: number;
  safe: Address;
  description: string;
  tx: { to: Address; value: string; data: Hex; operation: 0; nonce: string };
  /** owner address → 65-byte EIP-712 signature */
  signatures: Record<string, Hex>;
}

export class TreasuryError extends Error {
  override name = "TreasuryError";
}

function message(file: SafeTxFile) {
  return {
    to: file.tx.to,
    value: BigInt(file.tx.value),
    data: file.tx.data,
    operation: file.tx.operation,
    safeTxGas: 0n,
    baseGas: 0n,
    gasPrice: 0n,
    gasToken: zeroAddress,
    refundReceiver: zeroAddress,
    nonce: BigInt(file.tx.nonce),
  };
}

/** Checks a file read from disk; names the bad field. */
export function parseSafeTxFile(value: unknown): SafeTxFile {
  const f = value as SafeTxFile;
  const bad = (field: string) => new TreasuryError(`treasury file: bad "${field}"`);
  if (typeof f !== "object" || f === null || f.version !== 1) throw bad("version");
  if (!Number.isInteger(f.chainId)) throw bad("chainId");
  if (!isAddress(f.safe)) throw bad("safe");
  if (typeof f.tx !== "object" || !isAddress(f.tx.to) || !/^0x[0-9a-fA-F]*$/.test(f.tx.data) || f.tx.operation !== 0)
    throw bad("tx");
  if (!/^\d+$/.test(f.tx.value) || !/^\d+$/.test(f.tx.nonce)) throw bad("tx.value/nonce");
  if (typeof f.signatures !== "object" || f.signatures === null) throw bad("signatures");
  return f;
}

/** Safe 1.5 keeps its transaction guard at keccak256("guard_manager.guard.address"). */
const GUARD_SLOT = "0x4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8";

const COUNCIL_GUARD_ABI = [
  { type: "function", name: "token", stateMutability: "view", inputs: [], outputs: [{ type: "address" }] },
  { type: "function", name: "tokenCap", stateMutability: "view", inputs: [], outputs: [{ type: "uint128" }] },
  { type: "function", name: "period", stateMutability: "view", inputs: [], outputs: [{ type: "uint64" }] },
  {
    type: "function",
    name: "spent",
    stateMutability: "view",
    inputs: [{ type: "address" }, { type: "uint256" }],
    outputs: [{ type: "uint128" }, { type: "uint128" }],
  },
] as const;

/**
 * What the council may still pay in X0T this period, per the Safe's CouncilGuard; undefined if the
 * Safe has no guard.
 */
export async function remainingPayoutCap(
  client: PublicClient,
  safe: Address,
): Promise<{ guard: Address; token: Address; remaining: bigint; cap: bigint } | undefined> {
  const slot = await client.getStorageAt({ address: safe, slot: GUARD_SLOT });
  const guard = getAddress(`0x${(slot ?? "0x").slice(-40).padStart(40, "0")}`);
  if (guard === zeroAddress) return undefined;
  const read = <F extends "token" | "tokenCap" | "period">(functionName: F) =>
    client.readContract({ address: guard, abi: COUNCIL_GUARD_ABI, functionName });
  const [token, cap, period, block] = await Promise.all([
    read("token"),
    read("tokenCap"),
    read("period"),
    client.getBlock(),
  ]);
  const [spent] = await client.readContract({
    address: guard,
    abi: COUNCIL_GUARD_ABI,
    functionName: "spent",
    args: [safe, block.timestamp / period],
  });
  return { guard, token, remaining: cap > spent ? cap - spent : 0n, cap };
}

/** Proposes an ERC-20 transfer from the Safe (the usual payout of a passed Snapshot vote). */
export async function proposeTokenTransfer(
  client: PublicClient,
  args: { safe: Address; token: Address; to: Address; amount: bigint; description: string },
): Promise<SafeTxFile> {
  const cap = await remainingPayoutCap(client, args.safe);
  if (cap && getAddress(cap.token) !== getAddress(args.token))
    throw new TreasuryError(`the council may only pay out ${cap.token}, not ${args.token} (CouncilGuard ${cap.guard})`);
  if (cap && args.amount > cap.remaining)
    throw new TreasuryError(
      `${args.amount} wei is above the council's cap: ${cap.remaining} of ${cap.cap} wei left this period; a larger grant needs an on-chain proposal`,
    );
  const nonce = await client.readContract({ address: args.safe, abi: SAFE_ABI, functionName: "nonce" });
  return {
    version: 1,
    chainId: await client.getChainId(),
    safe: getAddress(args.safe),
    description: args.description,
    tx: {
      to: getAddress(args.token),
      value: "0",
      data: encodeFunctionData({ abi: erc20Abi, functionName: "transfer", args: [args.to, args.amount] }),
      operation: 0,
      nonce: nonce.toString(),
    },
    signatures: {},
  };
}

/** Adds `account`'s signature; refuses a non-owner (checked on-chain) and a stale nonce. */
export async function signSafeTx(
  client: PublicClient,
  file: SafeTxFile,
  account: Account & { signTypedData: NonNullable<Account["signTypedData"]> },
): Promise<SafeTxFile> {
  const owners = await client.readContract({ address: file.safe, abi: SAFE_ABI, functionName: "getOwners" });
  if (!owners.some((o) => o.toLowerCase() === account.address.toLowerCase()))
    throw new TreasuryError(`${account.address} is not an owner of the Safe ${file.safe}`);
  const nonce = await client.readContract({ address: file.safe, abi: SAFE_ABI, functionName: "nonce" });
  if (nonce.toString() !== file.tx.nonce)
    throw new TreasuryError(`the Safe's nonce is ${nonce}, the file's ${file.tx.nonce}: propose again`);
  const signature = await account.signTypedData({
    domain: { chainId: file.chainId, verifyingContract: file.safe },
    types: SAFE_TX_TYPES,
    primaryType: "SafeTx",
    message: message(file),
  });
  return { ...file, signatures: { ...file.signatures, [getAddress(account.address)]: signature } };
}

/** Sends execTransaction with the collected signatures once they reach the threshold. */
export async function executeSafeTx(client: PublicClient, wallet: WalletClient, file: SafeTxFile): Promise<Hex> {
  const threshold = await client.readContract({ address: file.safe, abi: SAFE_ABI, functionName: "getThreshold" });
  const signers = Object.keys(file.signatures).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
  if (BigInt(signers.length) < threshold)
    throw new TreasuryError(`${signers.length} of ${threshold} signatures: not enough to execute`);
  const packed = `0x${signers.map((s) => (file.signatures[s] as Hex).slice(2)).join("")}` as Hex;
  const m = message(file);
  const account = wallet.account;
  if (!account) throw new TreasuryError("the wallet has no account to send from");
  return wallet.writeContract({
    address: file.safe,
    abi: SAFE_ABI,
    functionName: "execTransaction",
    args: [m.to, m.value, m.data, m.operation, 0n, 0n, 0n, zeroAddress, zeroAddress, packed],
    account,
    chain: wallet.chain,
  });
}

/**
 * What a user or an operator does on-chain, as plain functions over viem clients: buy credit with
 * a permit (one transaction), authorise or revoke a client key, lock credit for a relay, stake,
 * unbond, withdraw, claim, and read a status. The `x0t` commands (cli/account.ts) call these.
 */
import {
  type Account,
  type Address,
  type Chain,
  type Hex,
  type LocalAccount,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import { bandwidthCreditDomain, signClientKeyAuthorization } from "../accounting/receipts.ts";
import { bandwidthCreditAbi, epochRewardsAbi, relayerRegistryAbi, x0tAbi } from "./abi.ts";
import { ChainError } from "./errors.ts";
import { signPermit } from "./permit.ts";
import { relayerRegistryDomain, signSignerConsent } from "./registry.ts";

export const GB = 1_000_000_000n;

/** Addresses of the protocol contracts (from .x0t/deployment.json or deployments/<chain>.json). */
export interface ProtocolAddresses {
  X0T: Address;
  RelayerRegistry: Address;
  BandwidthCredit: Address;
  EpochRewards: Address;
}

export interface AccountClients {
  public: PublicClient;
  wallet: WalletClient<Transport, Chain | undefined, Account>;
  contracts: ProtocolAddresses;
}

export class ChainActionError extends ChainError {}

/** A mined transaction, with the explorer link of its chain where one is known. */
export interface Sent {
  hash: Hex;
  explorer?: string;
}

const EXPLORERS: Record<number, string> = { 84532: "https://sepolia.basescan.org", 8453: "https://basescan.org" };

/** The block explorer's page of `hash` on `chainId`, if the chain has a public explorer. */
export function explorerLink(chainId: number, hash: Hex): string | undefined {
  const base = EXPLORERS[chainId];
  return base ? `${base}/tx/${hash}` : undefined;
}

async function mined(c: AccountClients, hash: Hex, what: string): Promise<Sent> {
  const receipt = await c.public.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new ChainActionError(`${what}: transaction ${hash} reverted`);
  const chainId = await c.public.getChainId();
  return { hash, explorer: explorerLink(chainId, hash) };
}

/** The wallet's EIP-2612 permit for `spender` to pull `amount` X0T, valid for an hour. */
async function permitFor(c: AccountClients, spender: Address, amount: bigint) {
  const owner = c.wallet.account.address;
  const [nonce, chainId, name] = await Promise.all([
    c.public.readContract({ address: c.contracts.X0T, abi: x0tAbi, functionName: "nonces", args: [owner] }),
    c.public.getChainId(),
    c.public.readContract({ address: c.contracts.X0T, abi: x0tAbi, functionName: "name" }),
  ]);
  const deadline = BigInt(Math.floor(Date.now() / 1000) + 3_600);
  const sig = await signPermit(c.wallet, {
    token: c.contracts.X0T,
    name,
    chainId,
    spender,
    value: amount,
    nonce,
    deadline,
  });
  return { deadline, chainId, ...sig };
}

/**
 * Registers the wallet as a relay operator with `amount` X0T of stake (permit, one transaction):
 * its endpoint, region, static keys hash and the node `signer` that consents to sign for it.
 */
export async function registerRelayer(
  c: AccountClients,
  node: { endpoint: string; region: string; keysHash: Hex; signer: LocalAccount; amount: bigint },
): Promise<Sent> {
  const { deadline, chainId, v, r, s } = await permitFor(c, c.contracts.RelayerRegistry, node.amount);
  const consent = await signSignerConsent(
    node.signer,
    relayerRegistryDomain(chainId, c.contracts.RelayerRegistry),
    c.wallet.account.address,
  );
  const region = `0x${Buffer.from(node.region, "ascii").toString("hex")}` as Hex;
  const hash = await c.wallet.writeContract({
    chain: c.wallet.chain ?? null,
    address: c.contracts.RelayerRegistry,
    abi: relayerRegistryAbi,
    functionName: "registerWithPermit",
    args: [node.endpoint, region, node.keysHash, node.signer.address, consent, node.amount, deadline, v, r, s],
  });
  return mined(c, hash, "register");
}

/** Buys `amount` X0T (wei) of credit with an EIP-2612 permit, in one transaction. */
export async function buyCredit(c: AccountClients, amount: bigint): Promise<Sent> {
  const { deadline, v, r, s } = await permitFor(c, c.contracts.BandwidthCredit, amount);
  const hash = await c.wallet.writeContract({
    chain: c.wallet.chain ?? null,
    address: c.contracts.BandwidthCredit,
    abi: bandwidthCreditAbi,
    functionName: "buyWithPermit",
    args: [amount, deadline, v, r, s],
  });
  return mined(c, hash, "buy");
}

/** Authorises `key` to sign for the wallet's account, locking at most `capPerEpoch` bytes an epoch. */
export async function authorizeClientKey(c: AccountClients, key: LocalAccount, capPerEpoch: bigint): Promise<Sent> {
  const chainId = await c.public.getChainId();
  const domain = bandwidthCreditDomain(chainId, c.contracts.BandwidthCredit);
  const proof = await signClientKeyAuthorization(key, domain, c.wallet.account.address, capPerEpoch);
  const hash = await c.wallet.writeContract({
    chain: c.wallet.chain ?? null,
    address: c.contracts.BandwidthCredit,
    abi: bandwidthCreditAbi,
    functionName: "authorizeClientKey",
    args: [key.address, capPerEpoch, proof],
  });
  return mined(c, hash, "authorize key");
}

/** Stops `key` from opening locks, at once. */
export async function revokeClientKey(c: AccountClients, key: Address): Promise<Sent> {
  const hash = await c.wallet.writeContract({
    chain: c.wallet.chain ?? null,
    address: c.contracts.BandwidthCredit,
    abi: bandwidthCreditAbi,
    functionName: "revokeClientKey",
    args: [key],
  });
  return mined(c, hash, "revoke key");
}

/** Locks `bytes` of free credit for `relayer` for the current epoch and `epochs` more. */
export async function lockCredit(c: AccountClients, relayer: Address, bytes: bigint, epochs: bigint): Promise<Sent> {
  const current = await c.public.readContract({
    address: c.contracts.EpochRewards,
    abi: epochRewardsAbi,
    functionName: "currentEpoch",
  });
  const hash = await c.wallet.writeContract({
    chain: c.wallet.chain ?? null,
    address: c.contracts.BandwidthCredit,
    abi: bandwidthCreditAbi,
    functionName: "lock",
    args: [relayer, bytes, current + epochs],
  });
  return mined(c, hash, "lock");
}

/** Adds `amount` X0T (wei) to the wallet's stake (approve, then addStake). */
export async function addStake(c: AccountClients, amount: bigint): Promise<Sent> {
  const approve = await c.wallet.writeContract({
    chain: c.wallet.chain ?? null,
    address: c.contracts.X0T,
    abi: x0tAbi,
    functionName: "approve",
    args: [c.contracts.RelayerRegistry, amount],
  });
  await mined(c, approve, "approve stake");
  const hash = await c.wallet.writeContract({
    chain: c.wallet.chain ?? null,
    address: c.contracts.RelayerRegistry,
    abi: relayerRegistryAbi,
    functionName: "addStake",
    args: [amount],
  });
  return mined(c, hash, "stake");
}

/** Starts unbonding `amount` X0T (wei) of the wallet's stake. */
export async function unbond(c: AccountClients, amount: bigint): Promise<Sent> {
  const hash = await c.wallet.writeContract({
    chain: c.wallet.chain ?? null,
    address: c.contracts.RelayerRegistry,
    abi: relayerRegistryAbi,
    functionName: "unbond",
    args: [amount],
  });
  return mined(c, hash, "unbond");
}

/** Pays out the wallet's unbonded stake. */
export async function withdraw(c: AccountClients): Promise<Sent> {
  const hash = await c.wallet.writeContract({
    chain: c.wallet.chain ?? null,
    address: c.contracts.RelayerRegistry,
    abi: relayerRegistryAbi,
    functionName: "withdraw",
  });
  return mined(c, hash, "withdraw");
}

/** Epochs of `relayer` that are final and have something to claim, looking back `lookback` epochs. */
export async function claimableEpochs(c: AccountClients, relayer: Address, lookback = 48n): Promise<bigint[]> {
  const current = await c.public.readContract({
    address: c.contracts.EpochRewards,
    abi: epochRewardsAbi,
    functionName: "currentEpoch",
  });
  const epochs: bigint[] = [];
  const first = current > lookback ? current - lookback : 0n;
  for (let e = first; e < current; e++) {
    const [closed] = await c.public.readContract({
      address: c.contracts.EpochRewards,
      abi: epochRewardsAbi,
      functionName: "receiptsClosed",
      args: [e],
    });
    if (!closed) continue;
    const pending = await c.public.readContract({
      address: c.contracts.EpochRewards,
      abi: epochRewardsAbi,
      functionName: "pendingReward",
      args: [e, relayer],
    });
    if (pending > 0n) epochs.push(e);
  }
  return epochs;
}

/** What the wallet's account has: X0T, free credit, and as a relayer its stake and pending rewards. */
export async function readStatus(c: AccountClients, relayer?: Address) {
  const account = c.wallet.account.address;
  const [balance, credit, currentEpoch] = await Promise.all([
    c.public.readContract({ address: c.contracts.X0T, abi: x0tAbi, functionName: "balanceOf", args: [account] }),
    c.public.readContract({
      address: c.contracts.BandwidthCredit,
      abi: bandwidthCreditAbi,
      functionName: "creditOf",
      args: [account],
    }),
    c.public.readContract({ address: c.contracts.EpochRewards, abi: epochRewardsAbi, functionName: "currentEpoch" }),
  ]);
  const status = {
    account,
    currentEpoch,
    balance,
    freeCreditBytes: credit[0],
    freeCreditEscrow: credit[1],
    relayer: undefined as
      undefined | { address: Address; stake: bigint; unbonding: bigint; active: boolean; claimableEpochs: bigint[] },
  };
  if (relayer) {
    const node = await c.public.readContract({
      address: c.contracts.RelayerRegistry,
      abi: relayerRegistryAbi,
      functionName: "getNode",
      args: [relayer],
    });
    const active = await c.public.readContract({
      address: c.contracts.RelayerRegistry,
      abi: relayerRegistryAbi,
      functionName: "isActive",
      args: [relayer],
    });
    status.relayer = {
      address: relayer,
      stake: node.stake,
      unbonding: node.unbonding,
      active,
      claimableEpochs: await claimableEpochs(c, relayer),
    };
  }
  return status;
}

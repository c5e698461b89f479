/**
 * Shared fixture: the whole token economy deployed by the real Ignition module on Hardhat's
 * in-process EVM, with short epochs and a small k so tests can walk through epochs quickly.
 */
import { network } from "hardhat";
import { type Address, getAddress, type Hex, type LocalAccount, keccak256, stringToHex, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import ProtocolModule from "../../deploy/ignition/modules/Protocol.js";
import {
  bandwidthCreditDomain,
  epochRewardsDomain,
  signClientKeyAuthorization,
} from "@x0tta6bl4/relayer/accounting/receipts";
import { relayerRegistryDomain, signSignerConsent } from "@x0tta6bl4/relayer/chain/registry";
import { CELL_PRICE_BYTES, PaymentGate } from "@x0tta6bl4/relayer/accounting/gate";
import { ClientKeys } from "../../relayer/src/accounting/client-keys.ts";
import type { PayHello } from "../../relayer/src/wire/payment.ts";
import { AccountingStore } from "@x0tta6bl4/relayer/accounting/store";
import { ChannelReader } from "@x0tta6bl4/relayer/chain/reader";
import type { SettlementClients } from "@x0tta6bl4/relayer/chain/settlement";
import { PayerChannels, type PayerOptions } from "@x0tta6bl4/relayer/accounting/payer";
import type { DirectoryEntry } from "../../relayer/src/node/directory.ts";

export const X0T = 10n ** 18n;
export const GB = 1_000_000_000n;
export const EPOCH = 60;
export const MIN_STAKE = 1_000n * X0T;
export const UNBONDING_DELAY = 3_600;

export const TEST_PARAMETERS = {
  epochLength: EPOCH,
  minAttestations: 2,
  minStake: MIN_STAKE,
  unbondingDelay: UNBONDING_DELAY,
};

export async function connect() {
  return network.create();
}

export type Connection = Awaited<ReturnType<typeof connect>>;

/** Deploys with the Ignition module and returns typed contracts and funded actors. */
export async function deployProtocol(
  connection: Connection,
  parameters: Record<string, unknown> = {},
  /** Ignition journal id; needed on a JSON-RPC chain (the default, chain-<id>, is npm start's). */
  deploymentId?: string,
) {
  const { viem, ignition } = connection;
  const wallets = await viem.getWalletClients();
  const [deployer, treasury] = wallets;
  if (!deployer || !treasury) throw new Error("the test network needs at least two funded accounts");
  const deployed = await ignition.deploy(ProtocolModule, {
    deploymentId,
    displayUi: false,
    parameters: { Protocol: { ...TEST_PARAMETERS, treasury: treasury.account.address, ...parameters } },
  });
  const token = await viem.getContractAt("X0T", deployed.token.address);
  const registry = await viem.getContractAt("RelayerRegistry", deployed.registry.address);
  const credit = await viem.getContractAt("BandwidthCredit", deployed.credit.address);
  const rewards = await viem.getContractAt("EpochRewards", deployed.rewards.address);
  const publicClient = await viem.getPublicClient();
  const chainId = await publicClient.getChainId();
  return {
    viem,
    publicClient,
    chainId,
    deployer,
    treasury,
    wallets,
    token,
    registry,
    credit,
    rewards,
    receiptDomain: epochRewardsDomain(chainId, rewards.address),
    registryDomain: relayerRegistryDomain(chainId, registry.address),
    creditDomain: bandwidthCreditDomain(chainId, credit.address),
  };
}

export type Protocol = Awaited<ReturnType<typeof deployProtocol>>;
export type Wallet = Protocol["wallets"][number];

/** Gives `to` X0T from the distributor (the deployer); the recipient pays no fee on it. */
export async function fund(p: Protocol, to: Address, amount: bigint) {
  await p.token.write.setFeeExempt([to, true]);
  await p.token.write.transfer([to, amount]);
  await p.token.write.setFeeExempt([to, false]);
}

/** A deterministic fake node-keys hash: sha256 of the keys is what production stores. */
export function keysHashOf(label: string): Hex {
  return keccak256(toHex(label));
}

/** ISO 3166-1 alpha-2 region code as the registry's bytes2. */
export function region(code: string): Hex {
  return stringToHex(code, { size: 2 });
}

/** The consent of `signer` to sign for `operator`, as register/updateNode take it. */
export function signerConsent(p: Protocol, signer: LocalAccount, operator: Address): Promise<Hex> {
  return signSignerConsent(signer, p.registryDomain, operator);
}

/** Registers `operator` as a relayer with `signer` (default: a fresh one); returns that signer. */
export async function registerRelayer(
  p: Protocol,
  operator: Wallet,
  stake = MIN_STAKE,
  signer: LocalAccount = privateKeyToAccount(generatePrivateKey()),
): Promise<LocalAccount> {
  const address = operator.account.address;
  await fund(p, address, stake);
  await p.token.write.approve([p.registry.address, stake], { account: operator.account });
  const endpoint = `relay-${address.slice(2, 10).toLowerCase()}.test:9001`;
  const consent = await signerConsent(p, signer, address);
  await p.registry.write.register([endpoint, region("DE"), keysHashOf(address), signer.address, consent, stake], {
    account: operator.account,
  });
  return signer;
}

/** Default per-epoch lock cap of test client keys: 1,000 GB. */
export const KEY_CAP = 1_000n * GB;

/** Buys credit for `amount` X0T for `payer` and authorises a fresh client key; returns the key. */
export async function buyCredit(p: Protocol, payer: Wallet, amount: bigint, cap = KEY_CAP): Promise<LocalAccount> {
  await fund(p, payer.account.address, amount);
  await p.token.write.approve([p.credit.address, amount], { account: payer.account });
  await p.credit.write.buy([amount], { account: payer.account });
  return authorizeKey(p, payer, cap);
}

export async function authorizeKey(p: Protocol, payer: Wallet, cap = KEY_CAP): Promise<LocalAccount> {
  const key = privateKeyToAccount(generatePrivateKey());
  const proof = await signClientKeyAuthorization(key, p.creditDomain, payer.account.address, cap);
  await p.credit.write.authorizeClientKey([key.address, cap, proof], { account: payer.account });
  return key;
}

/** `payer` locks `bytes` of its credit for `relayer` until `expiresEpoch` (default: current + 1). */
export async function lockFor(p: Protocol, payer: Wallet, relayer: Address, bytes: bigint, expiresEpoch?: bigint) {
  const expires = expiresEpoch ?? (await p.rewards.read.currentEpoch()) + 1n;
  await p.credit.write.lock([relayer, bytes, expires], { account: payer.account });
}

/** Moves time to the start of epoch `epoch` (+ `offset` seconds). */
export async function warpToEpoch(connection: Connection, p: Protocol, epoch: bigint, offset = 1) {
  const [, startsAt] = await p.rewards.read.epochInfo([epoch]);
  const target = startsAt + BigInt(offset);
  const now = BigInt(await connection.networkHelpers.time.latest());
  if (now >= target) throw new Error(`already past epoch ${epoch} + ${offset}s (now ${now}, target ${target})`);
  await connection.networkHelpers.time.increaseTo(target);
}

/** A payer's node's channels for `key` on this deployment, dated `epoch` (a fixed epoch). */
export function payerChannels(
  p: Protocol,
  key: LocalAccount,
  epoch: bigint,
  options: Pick<PayerOptions, "everyCells" | "everyMs" | "locks" | "now">,
): PayerChannels {
  return new PayerChannels({
    key,
    receiptDomain: p.receiptDomain,
    creditDomain: p.creditDomain,
    epoch: () => epoch,
    ...options,
  });
}

/** An entry's directory of `relays` run by `operators` (same order), the last one the exit. */
export function directoryOf(
  relays: readonly { host: string; port: number; keys: DirectoryEntry["keys"] }[],
  operators: readonly Wallet[],
  names = relays.map((_, i) => `r${i + 1}`),
): DirectoryEntry[] {
  return relays.map((r, i) => ({
    name: names[i]!,
    host: r.host,
    port: r.port,
    keys: r.keys,
    exit: i === relays.length - 1,
    region: undefined,
    operator: getAddress(operators[i]!.account.address),
  }));
}

/** What settlement (settleOnce, claimRewards) needs to send as `wallet`, a relay's operator or signer. */
export function settlementClients(
  p: Protocol,
  wallet: unknown,
  publicClient: unknown = p.publicClient,
): SettlementClients {
  return {
    public: publicClient as SettlementClients["public"],
    wallet: wallet as SettlementClients["wallet"],
    rewards: p.rewards.address,
  };
}

/**
 * A relay's payment gate on `p` as a paid node builds it (node/run.ts): an in-memory store, a
 * chain reader without cache (tests move the chain under it), receipts checked for `relayer`.
 */
export function paymentGateFor(
  p: Protocol,
  relayer: Address,
  limits: { allowanceBytes: bigint; slackCells: bigint; preHelloCells?: bigint },
) {
  const store = new AccountingStore(":memory:");
  const reader = new ChannelReader(
    p.publicClient as never,
    { credit: p.credit.address, rewards: p.rewards.address, relayer },
    { ttlMs: 0 },
  );
  // As node/run.ts does: hellos checked over their hop handshake, receipts verified natively.
  const keys = new ClientKeys(p.receiptDomain, relayer);
  const gate = new PaymentGate({
    chain: reader,
    store,
    verify: (epoch, r) => keys.verifyReceipt(epoch, r),
    allowanceBytes: limits.allowanceBytes,
    preHelloCells: limits.preHelloCells,
    slackCells: limits.slackCells,
    slackBytes: limits.slackCells * CELL_PRICE_BYTES,
  });
  const checkPayHello = (binding: Buffer, hello: PayHello) => keys.checkHello(binding, hello);
  return { store, reader, gate, keys, checkPayHello };
}

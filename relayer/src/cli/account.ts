/**
 * `x0t buy|key|lock|stake|unbond|withdraw|claim|status`: a user's and an operator's transactions.
 *
 *   x0t buy --gb 10                                  credit for 10 GB, one transaction (permit)
 *   x0t key authorize --key-file client.key --cap-gb 5   (creates the key file if missing)
 *   x0t key revoke --key 0xKey
 *   x0t lock --relayer 0xOperator --gb 1 [--epochs 1]
 *   x0t register --keys relay.key --signer-key signer.key --endpoint host:port --region DE --amount 10000
 *                                                    stake and register a relay (permit, one transaction;
 *                                                    the signer key file is created if missing)
 *   x0t stake --amount 10000 | x0t unbond --amount 10000 | x0t withdraw
 *   x0t claim [--relayer 0xOperator] [--epochs 3,4,5]    (default: every final epoch with rewards)
 *   x0t status [--relayer 0xOperator] [--accounting relay.db]   (the relay's receipts and batches)
 *
 * Common: --deployment FILE (default .x0t/deployment.json, written by `npm start`; or a committed
 * deployments/<chainId>.json), --rpc URL (default: the deployment's rpcUrl), --json. The wallet's
 * private key comes from X0T_PRIVATE_KEY only (flags end up in shell history). Amounts are whole X0T
 * or GB (decimals allowed). Every transaction prints its hash and, on public chains, its explorer link.
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type Address, createPublicClient, createWalletClient, type Hex, http, isAddress, parseUnits } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { loadEvmKey } from "../node/evmkey.ts";
import { AccountingStore } from "../accounting/store.ts";
import { loadOrCreateKeys } from "../node/keyfile.ts";
import {
  type AccountClients,
  addStake,
  authorizeClientKey,
  buyCredit,
  claimableEpochs,
  explorerLink,
  GB,
  lockCredit,
  type ProtocolAddresses,
  readStatus,
  registerRelayer,
  revokeClientKey,
  type Sent,
  unbond,
  withdraw,
} from "../chain/account.ts";
import { bandwidthCreditAbi } from "../chain/abi.ts";
import { claimRewards } from "../chain/settlement.ts";

export const ACCOUNT_COMMANDS = [
  "register",
  "buy",
  "key",
  "lock",
  "stake",
  "unbond",
  "withdraw",
  "claim",
  "status",
] as const;

export class AccountUsageError extends Error {
  override name = "AccountUsageError";
}

const OPTIONS = {
  deployment: { type: "string", default: ".x0t/deployment.json" },
  rpc: { type: "string" },
  json: { type: "boolean", default: false },
  gb: { type: "string" },
  amount: { type: "string" },
  relayer: { type: "string" },
  epochs: { type: "string" },
  key: { type: "string" },
  "key-file": { type: "string" },
  "cap-gb": { type: "string" },
  keys: { type: "string" },
  "signer-key": { type: "string" },
  endpoint: { type: "string" },
  region: { type: "string" },
  accounting: { type: "string" },
} as const;

function decimal(flag: string, value: string | undefined, decimals: number): bigint {
  if (!value || !/^\d+(\.\d+)?$/.test(value))
    throw new AccountUsageError(`--${flag}: expected a number, got "${value ?? ""}"`);
  const parsed = parseUnits(value, decimals);
  if (parsed === 0n) throw new AccountUsageError(`--${flag}: must be more than 0`);
  return parsed;
}

function address(flag: string, value: string | undefined): Address {
  if (!value || !isAddress(value))
    throw new AccountUsageError(`--${flag}: expected a 0x address, got "${value ?? ""}"`);
  return value;
}

/** Reads the deployment file: chain id, RPC URL and the four protocol addresses. */
export function readDeployment(path: string): { chainId: number; rpcUrl?: string; contracts: ProtocolAddresses } {
  if (!existsSync(path))
    throw new AccountUsageError(
      `--deployment: ${path} does not exist (run \`npm start\`, or pass deployments/<chainId>.json)`,
    );
  const parsed = JSON.parse(readFileSync(path, "utf8")) as {
    chainId?: unknown;
    rpcUrl?: unknown;
    contracts?: Record<string, unknown>;
  };
  const contracts: Partial<ProtocolAddresses> = {};
  for (const name of ["X0T", "RelayerRegistry", "BandwidthCredit", "EpochRewards"] as const) {
    const value = parsed.contracts?.[name];
    if (typeof value !== "string" || !isAddress(value))
      throw new AccountUsageError(`--deployment: ${path} has no address for contracts.${name}`);
    contracts[name] = value;
  }
  if (typeof parsed.chainId !== "number") throw new AccountUsageError(`--deployment: ${path} has no numeric chainId`);
  return {
    chainId: parsed.chainId,
    rpcUrl: typeof parsed.rpcUrl === "string" ? parsed.rpcUrl : undefined,
    contracts: contracts as ProtocolAddresses,
  };
}

function walletKey(): Hex {
  const k = process.env.X0T_PRIVATE_KEY;
  if (!k || !/^0x[0-9a-fA-F]{64}$/.test(k))
    throw new AccountUsageError("X0T_PRIVATE_KEY: expected a 0x-prefixed 32-byte hex private key in the environment");
  return k as Hex;
}

function jsonable(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
}

/**
 * Runs one account command. `clients` may be injected (tests); otherwise they are built from the
 * deployment file, --rpc and X0T_PRIVATE_KEY. Returns the process exit code.
 */
export async function runAccountCommand(
  argv: string[],
  out: (line: string) => void = (l) => process.stdout.write(l + "\n"),
  injected?: AccountClients,
): Promise<number> {
  const [command, ...rest] = argv;
  const sub = command === "key" ? rest.shift() : undefined;
  const { values } = parseArgs({ args: rest, strict: true, options: OPTIONS });
  let clients = injected;
  if (!clients) {
    const deployment = readDeployment(values.deployment);
    const rpc = values.rpc ?? deployment.rpcUrl;
    if (!rpc) throw new AccountUsageError("--rpc: the chain's JSON-RPC URL is required (the deployment file has none)");
    const account = privateKeyToAccount(walletKey());
    const transport = http(rpc);
    clients = {
      public: createPublicClient({ transport }),
      wallet: createWalletClient({ account, transport }),
      contracts: deployment.contracts,
    };
  }
  const print = (human: string, data: Record<string, unknown>) =>
    out(values.json ? JSON.stringify(jsonable(data)) : human);
  const tx = (what: string, sent: Sent, extra: Record<string, unknown> = {}) =>
    print(`${what}: ${sent.hash}${sent.explorer ? ` ${sent.explorer}` : ""}`, { action: what, ...sent, ...extra });

  switch (command) {
    case "register": {
      if (!values.keys) throw new AccountUsageError("--keys: the relay's static key file is required");
      if (!values["signer-key"])
        throw new AccountUsageError("--signer-key: the node signer's key file is required (created if missing)");
      if (!values.endpoint || !/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(values.endpoint))
        throw new AccountUsageError(`--endpoint: expected host:port, got "${values.endpoint ?? ""}"`);
      if (!values.region || !/^[A-Z]{2}$/.test(values.region))
        throw new AccountUsageError(`--region: expected two capital letters (ISO 3166), got "${values.region ?? ""}"`);
      const { keys } = loadOrCreateKeys(values.keys);
      const signer = loadEvmKey(values["signer-key"], "--signer-key", { create: true });
      const keysHash = `0x${keys.keysHash.toString("hex")}` as Hex;
      tx(
        "register",
        await registerRelayer(clients, {
          endpoint: values.endpoint.toLowerCase(),
          region: values.region,
          keysHash,
          signer,
          amount: decimal("amount", values.amount, 18),
        }),
        { operator: clients.wallet.account.address, signer: signer.address, keysHash },
      );
      return 0;
    }
    case "buy": {
      const gb = decimal("gb", values.gb, 9);
      const price = await clients.public.readContract({
        address: clients.contracts.BandwidthCredit,
        abi: bandwidthCreditAbi,
        functionName: "pricePerGB",
      });
      const amount = (gb * price) / GB;
      tx("buy", await buyCredit(clients, amount), { bytes: gb, paid: amount });
      return 0;
    }
    case "key": {
      if (sub === "authorize") {
        if (!values["key-file"])
          throw new AccountUsageError("--key-file: where the client key is (created if missing)");
        const key = loadEvmKey(values["key-file"], "--key-file", { create: true });
        const cap = decimal("cap-gb", values["cap-gb"], 9);
        tx("authorize", await authorizeClientKey(clients, key, cap), { key: key.address, capPerEpoch: cap });
        return 0;
      }
      if (sub === "revoke") {
        tx("revoke", await revokeClientKey(clients, address("key", values.key)));
        return 0;
      }
      throw new AccountUsageError(`usage: x0t key authorize|revoke (got "${sub ?? ""}")`);
    }
    case "lock": {
      const epochs = values.epochs === undefined ? 1n : BigInt(decimal("epochs", values.epochs, 0));
      const bytes = decimal("gb", values.gb, 9);
      tx("lock", await lockCredit(clients, address("relayer", values.relayer), bytes, epochs), { bytes });
      return 0;
    }
    case "stake":
      tx("stake", await addStake(clients, decimal("amount", values.amount, 18)));
      return 0;
    case "unbond":
      tx("unbond", await unbond(clients, decimal("amount", values.amount, 18)));
      return 0;
    case "withdraw":
      tx("withdraw", await withdraw(clients));
      return 0;
    case "claim": {
      const relayer = values.relayer ? address("relayer", values.relayer) : clients.wallet.account.address;
      const epochs = values.epochs
        ? values.epochs.split(",").map((e) => {
            if (!/^\d+$/.test(e.trim()))
              throw new AccountUsageError(`--epochs: expected 3,4,5, got "${values.epochs}"`);
            return BigInt(e.trim());
          })
        : await claimableEpochs(clients, relayer);
      if (epochs.length === 0) {
        print("nothing to claim", { action: "claim", epochs: [] });
        return 0;
      }
      const { hash, minted } = await claimRewards(
        { public: clients.public, wallet: clients.wallet, rewards: clients.contracts.EpochRewards },
        relayer,
        epochs,
      );
      const chainId = await clients.public.getChainId();
      tx("claim", { hash, explorer: explorerLink(chainId, hash) }, { epochs, minted });
      return 0;
    }
    case "status": {
      const status = await readStatus(clients, values.relayer ? address("relayer", values.relayer) : undefined);
      const lines = [
        `account ${status.account}, epoch ${status.currentEpoch}`,
        `X0T ${status.balance}, free credit ${status.freeCreditBytes} bytes (${status.freeCreditEscrow} X0T wei)`,
      ];
      if (status.relayer)
        lines.push(
          `relayer ${status.relayer.address}: stake ${status.relayer.stake}, unbonding ${status.relayer.unbonding}, ` +
            `${status.relayer.active ? "active" : "inactive"}, claimable epochs [${status.relayer.claimableEpochs.join(", ")}]`,
        );
      let accounting: ReturnType<AccountingStore["summary"]> | undefined;
      if (values.accounting) {
        if (!existsSync(values.accounting))
          throw new AccountUsageError(`--accounting: ${values.accounting} does not exist (the relay's SQLite file)`);
        const store = new AccountingStore(values.accounting, { readOnly: true });
        accounting = store.summary(status.currentEpoch);
        store.close();
        lines.push(
          `accounting: ${accounting.payersThisEpoch} payers, ${accounting.cellsThisEpoch} cells receipted this epoch; ` +
            `${accounting.queued} receipts waiting in epochs [${accounting.queuedEpochs.join(", ")}], ` +
            `${accounting.unfinishedBatches} batches unfinished` +
            (accounting.uptime.length
              ? `; uptime bonus: ${accounting.uptime.map((u) => `epoch ${u.epoch} ${u.attestations} attestations, ${u.claim}`).join("; ")}`
              : ""),
        );
      }
      print(lines.join("\n"), { ...status, accounting });
      return 0;
    }
    default:
      throw new AccountUsageError(`usage: x0t ${ACCOUNT_COMMANDS.join("|")} [options] (got "${command ?? ""}")`);
  }
}

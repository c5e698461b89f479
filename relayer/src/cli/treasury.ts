/**
 * `x0t treasury propose|sign|execute`: the council's side of a treasury payout.
 *
 *   x0t treasury propose --rpc URL --safe 0xSafe --token 0xX0T --to 0xRecipient --amount 50000 \
 *                        --description "Snapshot proposal 0x…" --out payout.json
 *   X0T_PRIVATE_KEY=0x… x0t treasury sign    --rpc URL --file payout.json
 *   X0T_PRIVATE_KEY=0x… x0t treasury execute --rpc URL --file payout.json
 *
 * Amounts are in whole X0T (18 decimals). The private key is read from the environment only, never
 * from a flag (flags end up in shell history and process lists).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type Address, type Hex, createPublicClient, createWalletClient, http, isAddress, parseUnits } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { executeSafeTx, parseSafeTxFile, proposeTokenTransfer, signSafeTx } from "../governance/treasury.ts";

function requireAddress(name: string, value: string | undefined): Address {
  if (!value || !isAddress(value)) throw new Error(`--${name}: expected a 0x address, got "${value ?? ""}"`);
  return value;
}

function key(): Hex {
  const k = process.env.X0T_PRIVATE_KEY;
  if (!k || !/^0x[0-9a-fA-F]{64}$/.test(k))
    throw new Error("X0T_PRIVATE_KEY: expected a 0x-prefixed 32-byte hex private key in the environment");
  return k as Hex;
}

/** Runs one treasury command; returns the process exit code. Output goes to `out`. */
export async function runTreasuryCommand(
  argv: string[],
  out: (line: string) => void = (l) => process.stdout.write(l + "\n"),
): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== "propose" && command !== "sign" && command !== "execute") {
    throw new Error(`usage: x0t treasury propose|sign|execute (got "${command ?? ""}")`);
  }
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      rpc: { type: "string" },
      safe: { type: "string" },
      token: { type: "string" },
      to: { type: "string" },
      amount: { type: "string" },
      description: { type: "string", default: "" },
      out: { type: "string" },
      file: { type: "string" },
    },
  });
  if (!values.rpc) throw new Error("--rpc: the chain's JSON-RPC URL is required");
  const client = createPublicClient({ transport: http(values.rpc) });
  if (command === "propose") {
    if (!values.amount || !/^\d+(\.\d+)?$/.test(values.amount))
      throw new Error(`--amount: expected X0T, e.g. 50000, got "${values.amount ?? ""}"`);
    if (!values.out) throw new Error("--out: where to write the transaction file");
    const file = await proposeTokenTransfer(client, {
      safe: requireAddress("safe", values.safe),
      token: requireAddress("token", values.token),
      to: requireAddress("to", values.to),
      amount: parseUnits(values.amount, 18),
      description: values.description,
    });
    writeFileSync(values.out, JSON.stringify(file, null, 2) + "\n");
    out(`proposed Safe transaction nonce ${file.tx.nonce} → ${values.out}`);
    return 0;
  }
  if (!values.file) throw new Error("--file: the transaction file");
  const file = parseSafeTxFile(JSON.parse(readFileSync(values.file, "utf8")));
  const account = privateKeyToAccount(key());
  if (command === "sign") {
    const signed = await signSafeTx(client, file, account);
    writeFileSync(values.file, JSON.stringify(signed, null, 2) + "\n");
    out(`signed by ${account.address}: ${Object.keys(signed.signatures).length} signature(s)`);
    return 0;
  }
  // execute
  const chainId = await client.getChainId();
  const chain = {
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [values.rpc] } },
  };
  const wallet = createWalletClient({ account, transport: http(values.rpc), chain });
  const hash = await executeSafeTx(client, wallet, file);
  const receipt = await client.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`execTransaction ${hash} reverted`);
  out(`executed: ${hash}`);
  return 0;
}

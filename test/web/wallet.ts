/**
 * A realistic injected wallet for browser tests: an EIP-1193 provider announced through EIP-6963
 * in the page, whose every request runs here in Node (page.exposeBinding). It signs with a viem
 * local account and really sends transactions; reads go to the chain's JSON-RPC as they are.
 * `eth_accounts` answers [] until `eth_requestAccounts`, as a real wallet before the user connects.
 */
import type { BrowserContext } from "@playwright/test";
import { BaseError, createWalletClient, type Hex, http, type LocalAccount, toHex } from "viem";

type Field = { name: string; type: string };

/** JSON typed data (numbers as strings) back to what viem signs. */
function reviveTypedData(data: {
  domain: Record<string, unknown>;
  types: Record<string, Field[]>;
  primaryType: string;
  message: Record<string, unknown>;
}) {
  const types = { ...data.types };
  delete types.EIP712Domain;
  const revive = (fields: Field[] | undefined, value: Record<string, unknown>) => {
    const out: Record<string, unknown> = { ...value };
    for (const f of fields ?? [])
      if (/^u?int\d*$/.test(f.type) && out[f.name] !== undefined) out[f.name] = BigInt(out[f.name] as string);
    return out;
  };
  const domain = { ...data.domain };
  if (domain.chainId !== undefined) domain.chainId = Number(domain.chainId);
  return { domain, types, primaryType: data.primaryType, message: revive(types[data.primaryType], data.message) };
}

function revertData(error: unknown): Hex | undefined {
  let found: Hex | undefined;
  if (error instanceof BaseError)
    error.walk((e) => {
      const d = (e as { data?: unknown }).data;
      if (typeof d === "string" && d.startsWith("0x")) found = d as Hex;
      else if (d && typeof (d as { data?: unknown }).data === "string") found = (d as { data: Hex }).data;
      return false;
    });
  return found;
}

export async function injectWallet(context: BrowserContext, account: LocalAccount, rpcUrl: string, chainId: number) {
  const wallet = createWalletClient({ account, transport: http(rpcUrl) });
  let connected = false;
  const chainHex = toHex(chainId);
  const rpc = async (method: string, params: unknown[]) => {
    const res = await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    return (await res.json()) as { result?: unknown; error?: { code: number; message: string; data?: unknown } };
  };
  const handle = async (method: string, params: unknown[]): Promise<unknown> => {
    switch (method) {
      case "eth_accounts":
        return connected ? [account.address] : [];
      case "eth_requestAccounts":
        connected = true;
        return [account.address];
      case "eth_chainId":
        return chainHex;
      case "net_version":
        return String(chainId);
      case "wallet_switchEthereumChain":
        if ((params[0] as { chainId: string }).chainId.toLowerCase() === chainHex) return null;
        throw Object.assign(new Error("Unrecognized chain"), { code: 4902 });
      case "wallet_getPermissions":
      case "wallet_requestPermissions":
        if (method === "wallet_requestPermissions") connected = true;
        return connected ? [{ parentCapability: "eth_accounts" }] : [];
      case "wallet_revokePermissions":
        connected = false;
        return null;
      case "eth_signTypedData_v4":
        return account.signTypedData(reviveTypedData(JSON.parse(params[1] as string)) as never);
      case "personal_sign":
        return account.signMessage({ message: { raw: params[0] as Hex } });
      case "eth_sendTransaction": {
        const tx = params[0] as { to?: Hex; data?: Hex; value?: Hex; gas?: Hex };
        return wallet.sendTransaction({
          chain: null,
          to: tx.to,
          data: tx.data,
          value: tx.value ? BigInt(tx.value) : undefined,
          gas: tx.gas ? BigInt(tx.gas) : undefined,
        });
      }
      default: {
        const res = await rpc(method, params);
        if (res.error) throw Object.assign(new Error(res.error.message), res.error);
        return res.result;
      }
    }
  };
  await context.exposeBinding("__x0tWallet", async (_source, method: string, params: unknown[]) => {
    try {
      return { result: await handle(method, params ?? []) };
    } catch (error) {
      const data = revertData(error) ?? (error as { data?: unknown }).data;
      const code = (error as { code?: number }).code ?? (data ? 3 : -32603);
      const message = error instanceof BaseError ? error.shortMessage : String((error as Error).message ?? error);
      return { error: { code, message, data } };
    }
  });
  // A string, not a function: the test runner's transpiler would add helpers (__name) the page lacks.
  await context.addInitScript(`(() => {
    const listeners = {};
    const call = window.__x0tWallet;
    const provider = {
      async request({ method, params }) {
        const res = await call(method, params ?? []);
        if (res.error) {
          const error = new Error(res.error.message);
          error.code = res.error.code;
          error.data = res.error.data;
          throw error;
        }
        if (method === "eth_requestAccounts") for (const f of listeners.accountsChanged ?? []) f(res.result);
        return res.result;
      },
      on(event, f) {
        (listeners[event] ??= []).push(f);
        return provider;
      },
      removeListener(event, f) {
        listeners[event] = (listeners[event] ?? []).filter((g) => g !== f);
        return provider;
      },
    };
    const detail = Object.freeze({
      info: {
        uuid: "7d3c3f2e-0b5e-4c1e-9a51-000000000001",
        name: "Test Wallet",
        icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E",
        rdns: "org.x0tta6bl4.testwallet",
      },
      provider,
    });
    const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail }));
    window.addEventListener("eip6963:requestProvider", announce);
    announce();
  })();`);
}

/**
 * A local stand-in for Base Sepolia: a real `hardhat node` (EDR over JSON-RPC on loopback) started
 * with chain id 84532, and Safe 1.5's canonical contracts placed at their canonical addresses the
 * way they got there on real chains — CREATE2 through the Safe singleton factory
 * (0x914d7Fec…43d7, an OP-stack preinstall on Base Sepolia) with salt 0 and the npm package's
 * init code. Only the factory's runtime code is set directly (hardhat_setCode); the three Safe
 * contracts are deployed by transactions, and their addresses and code hashes must come out as
 * @safe-global/safe-deployments lists them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { type Address, type Hex, concat, createPublicClient, getContractAddress, http, toHex, zeroHash } from "viem";
import SafeL2 from "@safe-global/safe-smart-account/build/artifacts/contracts/SafeL2.sol/SafeL2.json" with { type: "json" };
import SafeProxyFactory from "@safe-global/safe-smart-account/build/artifacts/contracts/proxies/SafeProxyFactory.sol/SafeProxyFactory.json" with { type: "json" };
import FallbackHandler from "@safe-global/safe-smart-account/build/artifacts/contracts/handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json" with { type: "json" };

export const SAFE_SINGLETON_FACTORY: Address = "0x914d7Fec6aaC8cd542e72Bca78B30650d45643d7";
/** Runtime code of the Safe singleton factory (Arachnid's deterministic deployment proxy). */
const FACTORY_RUNTIME: Hex =
  "0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe03601600081602082378035828234f58015156039578182fd5b8082525050506014600cf3";
/** Hardhat's first test account: funds the placement, never the deployer under test. */
export const DEV_ACCOUNT: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cfFfb92266";

export const hardhatCli = (): string => join(dirname(createRequire(import.meta.url).resolve("hardhat")), "cli.js");

export interface LocalChain {
  url: string;
  chainId: number;
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  stop(): Promise<void>;
}

/** Starts `hardhat node --chain-id <chainId> --port <port>` and waits (bounded) until it answers. */
export async function startChain(chainId: number, port: number): Promise<LocalChain> {
  const child: ChildProcess = spawn(
    process.execPath,
    [hardhatCli(), "node", "--chain-id", String(chainId), "--hostname", "127.0.0.1", "--port", String(port)],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  let id = 0;
  const rpc = async <T>(method: string, params: unknown[] = []): Promise<T> => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.json()) as { result?: T; error?: { message: string } };
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result as T;
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`hardhat node exited (${child.exitCode}): ${stderr}`);
    try {
      const answered = Number(await rpc<string>("eth_chainId"));
      if (answered !== chainId) throw new Error(`node answers chain ${answered}, expected ${chainId}`);
      break;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`hardhat node did not answer on ${url}: ${stderr}`, { cause: error });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    url,
    chainId,
    rpc,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** Where CREATE2 through the singleton factory with salt 0 puts `bytecode`. */
export const canonicalAddress = (bytecode: Hex): Address =>
  getContractAddress({ opcode: "CREATE2", from: SAFE_SINGLETON_FACTORY, salt: zeroHash, bytecode });

/**
 * Places Safe 1.5's SafeL2 singleton, proxy factory and compatibility fallback handler at their
 * canonical addresses; returns them.
 */
export async function placeCanonicalSafe(
  chain: LocalChain,
): Promise<Record<"singleton" | "factory" | "handler", Address>> {
  await chain.rpc("hardhat_setCode", [SAFE_SINGLETON_FACTORY, FACTORY_RUNTIME]);
  const client = createPublicClient({ transport: http(chain.url) });
  const placed: Partial<Record<"singleton" | "factory" | "handler", Address>> = {};
  for (const [key, artifact] of [
    ["singleton", SafeL2],
    ["factory", SafeProxyFactory],
    ["handler", FallbackHandler],
  ] as const) {
    const hash = await chain.rpc<Hex>("eth_sendTransaction", [
      {
        from: DEV_ACCOUNT,
        to: SAFE_SINGLETON_FACTORY,
        data: concat([zeroHash, artifact.bytecode as Hex]),
        gas: toHex(8_000_000),
      },
    ]);
    const receipt = await client.waitForTransactionReceipt({ hash, timeout: 30_000 });
    if (receipt.status !== "success") throw new Error(`placing ${key} reverted`);
    placed[key] = canonicalAddress(artifact.bytecode as Hex);
  }
  return placed as Record<"singleton" | "factory" | "handler", Address>;
}

/**
 * `npm start`: the whole system on a local chain.
 *
 * 1. a Hardhat JSON-RPC node on 127.0.0.1 (chain 31337, the usual funded test accounts);
 * 2. the protocol deployed by the same Ignition module as on Base Sepolia;
 * 3. the addresses written to .x0t/deployment.json for the relayer and the web app.
 *
 * Ctrl-C stops everything. X0T_CHAIN_PORT changes the port (default 8545);
 * X0T_STATE_DIR changes where deployment.json goes (default .x0t).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { network } from "hardhat";
import { createPublicClient, http } from "viem";
import ProtocolModule from "../deploy/ignition/modules/Protocol.js";

const port = Number(process.env.X0T_CHAIN_PORT ?? 8545);
if (!Number.isInteger(port) || port <= 0 || port > 65_535) {
  throw new Error(`X0T_CHAIN_PORT must be a TCP port, got "${process.env.X0T_CHAIN_PORT}"`);
}
const rpcUrl = `http://127.0.0.1:${port}`;
const stateDir = resolve(process.env.X0T_STATE_DIR ?? ".x0t");
const children: ChildProcess[] = [];

function stopAll(code: number): never {
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  process.exit(code);
}
process.on("SIGINT", () => stopAll(0));
process.on("SIGTERM", () => stopAll(0));

async function waitForChain(timeoutMs: number): Promise<number> {
  const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await client.getChainId();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the local chain did not answer on ${rpcUrl}`, { cause: error });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function main() {
  // hardhat's "exports" hide its CLI file; find it from the package's main entry (dist/src/index.js).
  const hardhatCli = join(dirname(createRequire(import.meta.url).resolve("hardhat")), "cli.js");
  const chain = spawn(process.execPath, [hardhatCli, "node", "--hostname", "127.0.0.1", "--port", String(port)], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(chain);
  chain.on("exit", (code) => {
    console.error(`local chain exited (code ${code}); stopping`);
    stopAll(code ?? 1);
  });
  const chainId = await waitForChain(30_000);

  // The chain is new on every start: forget Ignition's journal of the previous one.
  await rm(join("deploy", "ignition", "deployments", `chain-${chainId}`), { recursive: true, force: true });
  const connection = await network.create({ network: "localhost", override: { url: rpcUrl } });
  const { token, registry, credit, rewards } = await connection.ignition.deploy(ProtocolModule, {
    displayUi: false,
    // One-minute epochs and k = 1 make the local demo move; Base Sepolia uses the defaults.
    parameters: { Protocol: { epochLength: 60, minAttestations: 1, unbondingDelay: 600 } },
  });
  const deployment = {
    chainId,
    rpcUrl,
    contracts: {
      X0T: token.address,
      RelayerRegistry: registry.address,
      BandwidthCredit: credit.address,
      EpochRewards: rewards.address,
    },
  };
  await mkdir(stateDir, { recursive: true });
  await writeFile(join(stateDir, "deployment.json"), JSON.stringify(deployment, null, 2) + "\n");

  console.log(`x0tta6bl4 is running on a local chain (id ${chainId}) at ${rpcUrl}`);
  for (const [name, address] of Object.entries(deployment.contracts)) console.log(`  ${name.padEnd(16)} ${address}`);
  console.log(`deployment written to ${join(stateDir, "deployment.json")}`);
  console.log("ready. Ctrl-C stops everything.");
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  if (error instanceof Error && error.cause) console.error("cause:", error.cause);
  stopAll(1);
});

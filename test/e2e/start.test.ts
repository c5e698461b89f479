/**
 * The README's start command, for real: a local JSON-RPC chain on loopback, the protocol deployed
 * and wired by the Ignition module, deployment.json written, three relays and the SOCKS5 entry
 * serving the printed curl line, and a clean stop of every process on Ctrl-C (SIGINT).
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { after, describe, it } from "node:test";
import { type Address, createPublicClient, getContract, http } from "viem";
import { hardhat } from "viem/chains";
import { artifacts } from "hardhat";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(
      () => reject(new Error(`no "${pattern}" within ${timeoutMs} ms; output:\n${output}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (pattern.test(output)) {
        clearTimeout(timer);
        resolve(output);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before "${pattern}"; output:\n${output}`));
    });
  });
}

describe("npm start", async () => {
  const port = await freePort();
  const socksPort = await freePort();
  const demoPort = await freePort();
  const stateDir = await mkdtemp(join(tmpdir(), "x0t-start-"));
  // What `npm start` runs once installed (npm itself only relays the signal and the exit code).
  const hardhatCli = join(dirname(createRequire(import.meta.url).resolve("hardhat")), "cli.js");
  const child = spawn(process.execPath, [hardhatCli, "run", "scripts/start.ts"], {
    env: {
      ...process.env,
      X0T_CHAIN_PORT: String(port),
      X0T_SOCKS_PORT: String(socksPort),
      X0T_DEMO_PORT: String(demoPort),
      X0T_STATE_DIR: stateDir,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  after(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    await rm(stateDir, { recursive: true, force: true });
  });

  it("brings up the chain, the protocol, relays and the SOCKS5 entry, then stops on Ctrl-C", async () => {
    const output = await waitForLine(child, /ready\. Ctrl-C stops everything\./, 120_000);
    // The curl line it prints works, through a 3-hop circuit.
    const line = /curl -x (socks5h:\/\/127\.0\.0\.1:\d+) (http:\/\/127\.0\.0\.1:\d+\/)/.exec(output);
    assert.ok(line, `no curl line in:\n${output}`);
    assert.equal(line[1], `socks5h://127.0.0.1:${socksPort}`);
    const { stdout } = await promisify(execFile)("curl", ["-sS", "--max-time", "30", "-x", line[1]!, line[2]!]);
    assert.match(stdout, /came to you through a 3-hop post-quantum circuit/);

    const deployment = JSON.parse(await readFile(join(stateDir, "deployment.json"), "utf8")) as {
      chainId: number;
      rpcUrl: string;
      contracts: Record<
        "X0T" | "RelayerRegistry" | "BandwidthCredit" | "EpochRewards" | "TimelockController" | "TreasurySafe",
        Address
      >;
    };
    assert.equal(deployment.chainId, 31337);
    assert.equal(deployment.rpcUrl, `http://127.0.0.1:${port}`);
    const client = createPublicClient({ chain: hardhat, transport: http(deployment.rpcUrl) });
    const at = async <N extends "X0T" | "BandwidthCredit" | "EpochRewards">(name: N) =>
      getContract({ address: deployment.contracts[name], abi: (await artifacts.readArtifact(name)).abi, client });
    const token = await at("X0T");
    const credit = await at("BandwidthCredit");
    const rewards = await at("EpochRewards");
    assert.equal(await token.read.totalSupply(), 400_000_000n * 10n ** 18n);
    assert.equal(await token.read.hasRole([await token.read.MINTER_ROLE(), deployment.contracts.EpochRewards]), true);
    assert.equal(await token.read.isFeeExempt([deployment.contracts.BandwidthCredit]), true);
    assert.equal(await credit.read.epochRewards(), deployment.contracts.EpochRewards);
    assert.equal((await rewards.read.epochInfo([0n]))[0].length, 60n);
    // Governance: the timelock holds the admin role, the deployer none; the Safe holds the treasury.
    const admin = await token.read.DEFAULT_ADMIN_ROLE();
    assert.equal(await token.read.hasRole([admin, deployment.contracts.TimelockController]), true);
    assert.equal(await credit.read.hasRole([admin, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"]), false);
    assert.equal(await token.read.balanceOf([deployment.contracts.TreasurySafe]), 300_000_000n * 10n ** 18n);

    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGINT");
    assert.equal(await exited, 0);
    await assert.rejects(client.getChainId(), "the chain must be gone after Ctrl-C");
    // The entry stops on the SIGTERM that start.ts sends it: give it up to 5 s.
    let socksGone = false;
    for (let i = 0; i < 50 && !socksGone; i++) {
      socksGone = await new Promise<boolean>((resolve) => {
        const probe = connect({ host: "127.0.0.1", port: socksPort });
        probe.once("connect", () => (probe.destroy(), resolve(false)));
        probe.once("error", () => resolve(true));
      });
      if (!socksGone) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(socksGone, true, "the SOCKS5 entry must be gone after Ctrl-C");
  });
});

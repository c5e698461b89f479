/**
 * The README's start command, for real: a local JSON-RPC chain on loopback, the protocol deployed
 * and wired by the Ignition module, deployment.json written, three relays and the SOCKS5 entry
 * serving the printed curl line, and a clean stop of every process on Ctrl-C (SIGINT).
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { after, describe, it } from "node:test";
import { DatabaseSync } from "node:sqlite";
import { type Address, createPublicClient, getAddress, getContract, type Hex, http, parseEventLogs } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { CELL_PRICE_BYTES } from "../../relayer/src/accounting/gate.ts";
import { expectedSha256, startBlobServer } from "../relayer/helpers.ts";

const X0T = 10n ** 18n;
const STAKE = 10_000n * X0T;
/** Hardhat's default accounts (npm start: 1-3 council, 4-6 relay operators, 7 the payer). */
const HARDHAT_ACCOUNTS = [
  "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
  "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
  "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
  "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
  "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
  "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
] as const satisfies readonly Address[];
import { hardhat } from "viem/chains";
import { artifacts } from "hardhat";
import { freePort } from "../helpers/net.ts";

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
  const metricsBase = await freePort(); // the entry's /metrics; relay i on metricsBase + i
  const stateDir = await mkdtemp(join(tmpdir(), "x0t-start-"));
  // What `npm start` runs once installed (npm itself only relays the signal and the exit code).
  const hardhatCli = join(dirname(createRequire(import.meta.url).resolve("hardhat")), "cli.js");
  const child = spawn(process.execPath, [hardhatCli, "run", "scripts/start.ts"], {
    env: {
      ...process.env,
      X0T_CHAIN_PORT: String(port),
      X0T_SOCKS_PORT: String(socksPort),
      X0T_DEMO_PORT: String(demoPort),
      X0T_METRICS_BASE_PORT: String(metricsBase),
      X0T_STATE_DIR: stateDir,
    },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: if the test fails half way, after() kills the chain, the relays and
    // the entry with it (they would otherwise outlive the test and keep the runner waiting).
    detached: true,
  });
  let blob: Awaited<ReturnType<typeof startBlobServer>> | undefined;
  after(async () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // the group is gone already
    }
    await blob?.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("brings up the chain, the protocol, paid relays and the SOCKS5 entry; a download is paid, settled and claimed to the wei; Ctrl-C stops it all", async () => {
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
    // Genesis, less the 1% burned on the council's payouts that funded the demo (30,610 X0T).
    const funded = 3n * 10_200n * X0T + 10n * X0T;
    const supplyAtStart = 400_000_000n * X0T - funded / 100n;
    // On a slow machine the relays may already have settled and claimed start.ts's own demo fetch
    // (epochs are a minute): count what settlements burned, sent the treasury and minted so far.
    const early = await client.getBlockNumber();
    const earlyLogs = async (abiName: "BandwidthCredit" | "EpochRewards", eventName: string) =>
      parseEventLogs({
        abi: (await artifacts.readArtifact(abiName)).abi,
        eventName: eventName as never,
        logs: await client.getLogs({
          address: deployment.contracts[abiName],
          fromBlock: 0n,
          toBlock: early,
        }),
      }) as unknown as { args: Record<string, bigint> }[];
    const settledEarly = await earlyLogs("BandwidthCredit", "CreditSettled");
    const mintedEarly = (await earlyLogs("EpochRewards", "RewardClaimed")).reduce((t, e) => t + e.args.amount!, 0n);
    const burnedEarly = settledEarly.reduce((t, e) => t + e.args.burned!, 0n);
    const treasuryEarly = settledEarly.reduce((t, e) => t + e.args.toTreasury!, 0n);
    assert.equal(await token.read.totalSupply({ blockNumber: early }), supplyAtStart - burnedEarly + mintedEarly);
    assert.equal(await token.read.hasRole([await token.read.MINTER_ROLE(), deployment.contracts.EpochRewards]), true);
    assert.equal(await token.read.isFeeExempt([deployment.contracts.BandwidthCredit]), true);
    assert.equal(await credit.read.epochRewards(), deployment.contracts.EpochRewards);
    assert.equal((await rewards.read.epochInfo([0n]))[0].length, 60n);
    // Governance: the timelock holds the admin role, the deployer none; the Safe holds the treasury.
    const admin = await token.read.DEFAULT_ADMIN_ROLE();
    assert.equal(await token.read.hasRole([admin, deployment.contracts.TimelockController]), true);
    assert.equal(await credit.read.hasRole([admin, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"]), false);
    const treasuryAtStart = 300_000_000n * X0T - funded;
    assert.equal(
      await token.read.balanceOf([deployment.contracts.TreasurySafe], { blockNumber: early }),
      treasuryAtStart + treasuryEarly,
    );

    // Pay, relay, prove, mint: a download through the entry's 3 paid hops, the epoch ends, the
    // relays submit their receipts and claim; every figure is checked against the chain's events.
    blob = await startBlobServer();
    const size = 6 * 1024 * 1024;
    const download = await promisify(execFile)(
      "sh",
      ["-c", `curl -sS --max-time 60 -x ${line[1]} http://127.0.0.1:${blob.port}/blob/${size} | sha256sum`],
      { encoding: "utf8" },
    );
    await blob.close();
    blob = undefined;
    assert.equal(download.stdout.split(" ")[0], expectedSha256(size), "the download arrived whole");
    // Every node's Prometheus endpoint counts what just happened.
    const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const value = (text: string, series: string) =>
      Number(new RegExp(`^${series.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    assert.match(output, new RegExp(`metrics: http://127\\.0\\.0\\.1:${metricsBase}/metrics`));
    const entryMetrics = await scrape(metricsBase);
    assert.ok(
      value(entryMetrics, 'x0t_circuit_build_duration_seconds_count{hops="3"}') >= 1,
      "the entry timed its circuit builds",
    );
    assert.ok(value(entryMetrics, "x0t_streams_opened_total") >= 2, "and counted its SOCKS streams");
    for (let i = 1; i <= 3; i++) {
      const relay = await scrape(metricsBase + i);
      assert.ok(value(relay, 'x0t_cells_relayed_total{direction="backward"}') > 100, `relay ${i} counted its cells`);
      assert.ok(value(relay, 'x0t_receipts_total{outcome="accepted"}') >= 1, `relay ${i} counted accepted receipts`);
    }
    // The entry sends each hop its last receipt within receiptEverySeconds (10 s) of the last cell.
    await new Promise((r) => setTimeout(r, 12_000));
    // What the payer's node signed (its own SQLite file, read beside it: WAL lets a reader in).
    const clientKey = privateKeyToAccount((await readFile(join(stateDir, "keys", "client.key"), "utf8")).trim() as Hex);
    const payerDb = new DatabaseSync(join(stateDir, "data", "payer.db"), { readOnly: true });
    const signed = new Map(
      (payerDb.prepare("SELECT relayer, bytes FROM channels").all() as { relayer: string; bytes: string }[]).map(
        (r) => [getAddress(r.relayer), BigInt(`0x${r.bytes}`)],
      ),
    );
    payerDb.close();
    const epoch = await rewards.read.currentEpoch(); // the latest any of those receipts can be dated
    const operators = [4, 5, 6].map((i) => HARDHAT_ACCOUNTS[i]!);
    const rpc = (method: string, params: unknown[] = []) =>
      client.request({ method: method as never, params: params as never });
    const warpPast = async (target: bigint) => {
      const [, endsAt] = await rewards.read.currentEpochEnd();
      const block = await client.getBlock();
      if (block.timestamp < endsAt) await rpc("evm_increaseTime", [Number(endsAt - block.timestamp) + 1]);
      await rpc("evm_mine");
      assert.ok((await rewards.read.currentEpoch()) >= target);
    };
    const eventsOf = async (
      abiName: "BandwidthCredit" | "EpochRewards",
      address: Address,
      eventName: string,
      toBlock?: bigint,
    ) =>
      parseEventLogs({
        abi: (await artifacts.readArtifact(abiName)).abi,
        eventName: eventName as never,
        logs: await client.getLogs({ address, fromBlock: 0n, toBlock }),
      }) as unknown as { args: Record<string, bigint | string> }[];
    /** Polls (bounded) until `check` is true; the relays act on their own settlement timers (5 s). */
    const until = async (what: string, check: () => Promise<boolean>) => {
      for (let i = 0; i < 120; i++) {
        if (await check()) return;
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.fail(`timed out waiting: ${what}`);
    };
    for (const o of operators) assert.ok((signed.get(o) ?? 0n) >= BigInt(size) / 3n, `the payer signed ${o} its third`);
    await warpPast(epoch + 1n);
    await until("the chain paid each relay everything the payer signed it", async () => {
      for (const o of operators)
        if ((await credit.read.channelOf([clientKey.address, o])).bytesPaid < signed.get(o)!) return false;
      return true;
    });
    await warpPast(epoch + 2n);
    const paidEpochs = async () =>
      (await eventsOf("BandwidthCredit", deployment.contracts.BandwidthCredit, "CreditConsumed")).filter(
        (e) => (e.args.epoch as bigint) <= epoch,
      );
    await until("every relay claims every epoch it was paid for", async () => {
      const claimed = await eventsOf("EpochRewards", deployment.contracts.EpochRewards, "RewardClaimed");
      return (await paidEpochs()).every((c) =>
        claimed.some((e) => e.args.epoch === c.args.epoch && e.args.relayer === c.args.relayer),
      );
    });
    // One view of the chain at one block: the relays keep settling (a late receipt dated the next
    // epoch, say) while the test reads, so every event and balance below is read at `at`.
    const viewBlock = await client.getBlockNumber();
    const view = { blockNumber: viewBlock };
    const consumed = await eventsOf(
      "BandwidthCredit",
      deployment.contracts.BandwidthCredit,
      "CreditConsumed",
      viewBlock,
    );
    const settledBatches = await eventsOf(
      "BandwidthCredit",
      deployment.contracts.BandwidthCredit,
      "CreditSettled",
      viewBlock,
    );
    const claimed = await eventsOf("EpochRewards", deployment.contracts.EpochRewards, "RewardClaimed", viewBlock);
    const sum = (events: { args: Record<string, bigint | string> }[], field: string) =>
      events.reduce((total, e) => total + (e.args[field] as bigint), 0n);
    for (const o of operators) {
      const mine = consumed.filter((e) => e.args.relayer === o && (e.args.epoch as bigint) <= epoch);
      assert.ok(mine.length >= 1, `${o} was paid from the payer's lock`);
      // Both ends count every cell at a third of a full cell: what the chain paid is what was counted.
      assert.equal(
        sum(mine, "bytesUsed"),
        sum(mine, "cells") * CELL_PRICE_BYTES,
        "bytes paid = cells x CELL_PRICE_BYTES",
      );
      for (const paidEpoch of new Set(mine.map((e) => e.args.epoch as bigint))) {
        const params = (await rewards.read.epochInfo([paidEpoch]))[0].params;
        // docs/economics.md: base = min(cells x rewardPerCell, value x relayShare) per receipt.
        const expected = mine
          .filter((e) => e.args.epoch === paidEpoch)
          .reduce((total, e) => {
            const byCells = (e.args.cells as bigint) * params.rewardPerCell;
            const byValue = ((e.args.value as bigint) * BigInt(params.relayShareBps)) / 10_000n;
            return total + (byCells < byValue ? byCells : byValue);
          }, 0n);
        const got = claimed.filter((e) => e.args.relayer === o && e.args.epoch === paidEpoch);
        assert.equal(got.length, 1);
        assert.equal(got[0]!.args.amount, expected, `${o}, epoch ${paidEpoch}: 90% of what its receipts released`);
      }
      const allClaims = sum(
        claimed.filter((e) => e.args.relayer === o),
        "amount",
      );
      assert.equal(await token.read.balanceOf([o], view), 10_200n * X0T - (10_200n * X0T) / 100n - STAKE + allClaims);
    }
    // 1% of each batch's released value to the treasury, the rest burned; over every epoch so far.
    const released = sum(consumed, "value");
    const minted = sum(claimed, "amount");
    const toTreasury = sum(settledBatches, "toTreasury");
    const burned = sum(settledBatches, "burned");
    assert.equal(burned + toTreasury, released, "every released X0T is burned or sent to the treasury");
    assert.ok(toTreasury > 0n && toTreasury <= released / 100n);
    assert.equal(await token.read.balanceOf([deployment.contracts.TreasurySafe], view), treasuryAtStart + toTreasury);
    assert.equal(
      await token.read.totalSupply(view),
      supplyAtStart - burned + minted,
      "supply: minus burned, plus minted",
    );
    assert.ok(minted <= burned, "no receipt adds to supply");
    // The payer: its 1 X0T of credit is what is still free, still locked and what was released.
    const payer = HARDHAT_ACCOUNTS[7]!;
    const [freeBytes, freeEscrow] = await credit.read.creditOf([payer], view);
    let lockedEscrow = 0n;
    for (const o of operators) lockedEscrow += (await credit.read.lockOf([payer, o], view)).escrow;
    assert.equal(freeEscrow + lockedEscrow + released, X0T, "the payer's 1 X0T: free + locked + released");
    assert.ok(freeBytes < 1_000_000_000n);
    console.log(
      `    6 MiB through 3 paid hops: released ${released} wei, minted ${minted}, burned ${burned}, treasury +${toTreasury}`,
    );

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

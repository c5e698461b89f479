/**
 * The README's start command, for real, on loopback ports of the test's choosing: a local chain,
 * the protocol deployed and wired by the Ignition modules, five paid relays (two exits in
 * different regions) and the SOCKS5 entry as separate processes, the printed curl line through
 * three hops, a download paid and settled to the wei by the relays that carried it, every node's
 * metrics, logs in files and nothing of the children on the terminal; a clean stop on Ctrl-C. Then
 * what goes wrong: a port already taken is named before anything starts; a start killed with
 * SIGKILL leaves its nodes running, and the next start stops them, sets the dead run's accounting
 * aside and comes up; a relay that dies is named with the end of its log, and everything stops.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, describe, it } from "node:test";
import { DatabaseSync } from "node:sqlite";
import { type Address, createPublicClient, getAddress, getContract, type Hex, http, parseEventLogs } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { artifacts } from "hardhat";
import { CELL_PRICE_BYTES } from "../../relayer/src/accounting/gate.ts";
import { stopLeftovers } from "../../scripts/start/supervisor.ts";
import { canBind } from "../../scripts/start/ports.ts";
import { expectedSha256, startBlobServer } from "../relayer/helpers.ts";
import { alive, eventually, freePortRange, processRows, readPidFile, runStart, type StartRun } from "./start-run.ts";

const X0T = 10n ** 18n;
const STAKE = 10_000n * X0T;
const PAYOUT = 10_200n * X0T;
/** Hardhat's default accounts (npm start: 1-3 council, 4-6, 8, 9 relay operators, 7 the payer). */
const HARDHAT_ACCOUNTS = [
  "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
  "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
  "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
  "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
  "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
  "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
  "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
  "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
] as const satisfies readonly Address[];
/** What npm start runs (scripts/start/nodes.ts): name → region, exit or not, operator. */
const RELAYS = [
  { name: "relay-1", region: "DE", exit: false, operator: HARDHAT_ACCOUNTS[4] },
  { name: "relay-2", region: "FR", exit: false, operator: HARDHAT_ACCOUNTS[5] },
  { name: "relay-3", region: "DE", exit: false, operator: HARDHAT_ACCOUNTS[6] },
  { name: "relay-4", region: "NL", exit: true, operator: HARDHAT_ACCOUNTS[8] },
  { name: "relay-5", region: "SE", exit: true, operator: HARDHAT_ACCOUNTS[9] },
];
const PAYER = HARDHAT_ACCOUNTS[7];

const listening = (port: number) => canBind(port).then((free) => !free);

describe("npm start", async () => {
  // chain, SOCKS, demo page, web app, then the entry's /metrics and relay i's on metricsBase + i.
  const first = await freePortRange(10);
  const [chainPort, socksPort, demoPort, webPort] = [first, first + 1, first + 2, first + 3];
  const metricsBase = first + 4;
  const stateDir = await mkdtemp(join(tmpdir(), "x0t-start-"));
  const pidFile = join(stateDir, "pids.json");
  const env = {
    X0T_CHAIN_PORT: String(chainPort),
    X0T_SOCKS_PORT: String(socksPort),
    X0T_DEMO_PORT: String(demoPort),
    X0T_WEB_PORT: String(webPort),
    X0T_METRICS_BASE_PORT: String(metricsBase),
    X0T_STATE_DIR: stateDir,
  };
  const runs: StartRun[] = [];
  const start = (extra: Record<string, string> = {}) => {
    const run = runStart({ ...env, ...extra });
    runs.push(run);
    return run;
  };
  let blob: Awaited<ReturnType<typeof startBlobServer>> | undefined;
  /** What a test that failed half way left: npm start's group, then whatever its pid file lists. */
  const cleanUp = async () => {
    for (const run of runs.splice(0)) {
      run.killGroup();
      // Until it is gone, the pid file names a live npm start, and stopLeftovers leaves it all alone.
      await Promise.race([run.exited, new Promise((r) => setTimeout(r, 5_000))]);
    }
    await stopLeftovers(pidFile);
  };
  after(async () => {
    await cleanUp();
    await blob?.close();
    await rm(stateDir, { recursive: true, force: true });
  });
  const curlThrough = async (url: string) =>
    (await promisify(execFile)("curl", ["-sS", "--max-time", "30", "-x", `socks5h://127.0.0.1:${socksPort}`, url]))
      .stdout;

  it("names a port that is taken, and what holds it, before it starts anything", async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(socksPort, "127.0.0.1", resolve));
    try {
      const run = start({ X0T_WEB: "off" });
      const { code } = await run.exited;
      assert.equal(code, 1, run.output());
      assert.match(
        run.output(),
        new RegExp(
          `✗ SOCKS5 entry: port ${socksPort} is in use by pid ${process.pid} \\(.*\\): stop it, or set X0T_SOCKS_PORT`,
        ),
      );
      assert.match(run.output(), /nothing was started/);
      assert.equal(await listening(chainPort), false, "no chain was started");
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it("runs every node as a process of its own, says what it does, keeps their logs in files; a download through 3 paid hops is settled to the wei; Ctrl-C stops it all", async () => {
    const run = start();
    const output = await run.waitFor(/ready in [\d.]+ s since npm start\. Ctrl-C stops everything\./, 180_000);

    // Numbered steps, in order, each with its duration; nothing from the children on the terminal.
    const steps = [...output.matchAll(/^\[ ?(\d+)\/11\] .+ \(\d+\.\d s\)$/gm)].map((m) => Number(m[1]));
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], output);
    for (const line of output.split("\n"))
      assert.ok(!/^\s*\{|"level"|Warning|warning:/.test(line), `a child's output on the terminal: ${line}`);

    // The process list: the chain, five relays (two exits in different regions), the entry, the web app.
    const rows = processRows(output);
    const relays = rows.filter((r) => r.role === "relay" || r.role === "exit");
    assert.deepEqual(
      relays.map((r) => [r.name, r.role, r.region]),
      RELAYS.map((r) => [r.name, r.exit ? "exit" : "relay", r.region]),
    );
    const exits = relays.filter((r) => r.role === "exit");
    assert.equal(exits.length, 2);
    assert.notEqual(exits[0]!.region, exits[1]!.region, "the two exits are in different regions");
    assert.ok(new Set(relays.map((r) => r.region)).size >= 3, "at least three regions");
    const entry = rows.find((r) => r.role === "entry")!;
    assert.equal(entry.listen, `127.0.0.1:${socksPort}`);
    assert.equal(entry.metrics, `http://127.0.0.1:${metricsBase}/metrics`);
    assert.ok(rows.some((r) => r.role === "chain" && r.listen === `127.0.0.1:${chainPort}`));
    assert.ok(
      rows.some((r) => r.role === "web"),
      "the web app (or its first build) is a process too",
    );
    const nodes = [...relays, entry];
    assert.equal(new Set(nodes.map((r) => r.pid)).size, 6, "six node processes");
    for (const [i, r] of relays.entries()) {
      assert.ok(alive(r.pid), `${r.name} runs`);
      const cmdline = readFileSync(`/proc/${r.pid}/cmdline`, "utf8").split("\0").join(" ");
      assert.match(cmdline, new RegExp(`node start --config \\S+/nodes/${r.name}\\.json`));
      assert.equal(r.metrics, `http://127.0.0.1:${metricsBase + i + 1}/metrics`);
    }
    // Their logs are files, and hold what they would have printed.
    for (const name of ["chain", "relay-1", "relay-5", "entry", "build", "start"])
      assert.ok(existsSync(join(stateDir, "logs", `${name}.log`)), `logs/${name}.log`);
    assert.match(readFileSync(join(stateDir, "logs", "relay-4.log"), "utf8"), /"msg":"relay ready".*"exit":true/);
    // Every relay measures the others for their uptime attestations (test/contracts/uptime.test.ts
    // follows them to the bonus; here epochs are warped, so the bonus is checked where it landed).
    for (const n of [1, 2, 3, 4, 5])
      assert.match(
        readFileSync(join(stateDir, "logs", `relay-${n}.log`), "utf8"),
        /"msg":"measuring other relays' uptime".*"probeIntervalMs":500/,
      );
    assert.match(readFileSync(join(stateDir, "logs", "chain.log"), "utf8"), /JSON-RPC server at/);

    // The curl line it prints works, through a 3-hop circuit of three regions ending at an exit.
    const line = /curl -x (socks5h:\/\/127\.0\.0\.1:\d+) (http:\/\/127\.0\.0\.1:\d+\/)/.exec(output);
    assert.ok(line, `no curl line in:\n${output}`);
    assert.equal(line[1], `socks5h://127.0.0.1:${socksPort}`);
    assert.match(await curlThrough(line[2]!), /came to you through a 3-hop post-quantum circuit/);
    const paths = [...readFileSync(join(stateDir, "logs", "entry.log"), "utf8").matchAll(/"path":"([^"]+)"/g)].map(
      (m) => m[1]!.split(">").map((name) => RELAYS.find((r) => r.name === name)!),
    );
    assert.ok(paths.length >= 1, "the entry logged the circuits it built");
    for (const path of paths) {
      assert.equal(path.length, 3);
      assert.equal(new Set(path.map((r) => r.region)).size, 3, "three regions on every path");
      assert.ok(path[2]!.exit, "every path ends at an exit");
    }

    const deployment = JSON.parse(await readFile(join(stateDir, "deployment.json"), "utf8")) as {
      chainId: number;
      rpcUrl: string;
      contracts: Record<
        "X0T" | "RelayerRegistry" | "BandwidthCredit" | "EpochRewards" | "TimelockController" | "TreasurySafe",
        Address
      >;
    };
    assert.equal(deployment.chainId, 31337);
    assert.equal(deployment.rpcUrl, `http://127.0.0.1:${chainPort}`);
    const client = createPublicClient({ chain: hardhat, transport: http(deployment.rpcUrl) });
    const at = async <N extends "X0T" | "BandwidthCredit" | "EpochRewards">(name: N) =>
      getContract({ address: deployment.contracts[name], abi: (await artifacts.readArtifact(name)).abi, client });
    const token = await at("X0T");
    const credit = await at("BandwidthCredit");
    const rewards = await at("EpochRewards");
    // Genesis, less the 1% burned on the council's payouts that funded the demo (5 × 10,200 + 10 X0T).
    const funded = 5n * PAYOUT + 10n * X0T;
    const supplyAtStart = 400_000_000n * X0T - funded / 100n;
    // On a slow machine the relays may already have settled and claimed start.ts's own demo fetch
    // (epochs are a minute): count what settlements burned, sent the treasury and minted so far.
    const early = await client.getBlockNumber();
    const eventsOf = async (abiName: "BandwidthCredit" | "EpochRewards", eventName: string, toBlock?: bigint) =>
      parseEventLogs({
        abi: (await artifacts.readArtifact(abiName)).abi,
        eventName: eventName as never,
        logs: await client.getLogs({ address: deployment.contracts[abiName], fromBlock: 0n, toBlock }),
      }) as unknown as { args: Record<string, bigint | string> }[];
    const sum = (events: { args: Record<string, bigint | string> }[], field: string) =>
      events.reduce((total, e) => total + (e.args[field] as bigint), 0n);
    const settledEarly = await eventsOf("BandwidthCredit", "CreditSettled", early);
    const mintedEarly = sum(await eventsOf("EpochRewards", "RewardClaimed", early), "amount");
    assert.equal(
      await token.read.totalSupply({ blockNumber: early }),
      supplyAtStart - sum(settledEarly, "burned") + mintedEarly,
    );
    assert.equal(await token.read.hasRole([await token.read.MINTER_ROLE(), deployment.contracts.EpochRewards]), true);
    assert.equal(await token.read.isFeeExempt([deployment.contracts.BandwidthCredit]), true);
    assert.equal(await credit.read.epochRewards(), deployment.contracts.EpochRewards);
    assert.equal((await rewards.read.epochInfo([0n]))[0].length, 60n);
    // Governance: the timelock holds the admin role, the deployer none; the Safe holds the treasury.
    const admin = await token.read.DEFAULT_ADMIN_ROLE();
    assert.equal(await token.read.hasRole([admin, deployment.contracts.TimelockController]), true);
    assert.equal(await credit.read.hasRole([admin, HARDHAT_ACCOUNTS[0]]), false);
    const treasuryAtStart = 300_000_000n * X0T - funded;
    assert.equal(
      await token.read.balanceOf([deployment.contracts.TreasurySafe], { blockNumber: early }),
      treasuryAtStart + sum(settledEarly, "toTreasury"),
    );

    // Pay, relay, prove, mint: a download through the entry's 3 paid hops, the epoch ends, the
    // relays that carried it submit their receipts and claim; every figure is checked on-chain.
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
    // Every node's Prometheus endpoint answers; those on the path counted what just happened.
    const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const value = (text: string, series: string) =>
      Number(new RegExp(`^${series.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    const entryMetrics = await scrape(metricsBase);
    assert.ok(
      value(entryMetrics, 'x0t_circuit_build_duration_seconds_count{hops="3"}') >= 1,
      "the entry timed its circuit builds",
    );
    assert.ok(value(entryMetrics, "x0t_streams_opened_total") >= 2, "and counted its SOCKS streams");
    const carried: string[] = [];
    for (const [i, r] of RELAYS.entries()) {
      const text = await scrape(metricsBase + i + 1);
      assert.match(text, new RegExp(`x0t_node_info\\{node_id="${r.name}",role="${r.exit ? "exit" : "relay"}"\\} 1`));
      if (value(text, 'x0t_cells_relayed_total{direction="backward"}') > 100) carried.push(r.name);
    }
    assert.ok(carried.length >= 3, `three relays carried the download (${carried.join(", ")})`);

    // The entry sends each hop its last receipt within receiptEverySeconds (10 s) of the last cell
    // (a hop new to the payer may get its first one only then: 6 MiB is under receiptEveryCells).
    await new Promise((r) => setTimeout(r, 12_000));
    for (const [i, r] of RELAYS.entries())
      if (carried.includes(r.name))
        assert.ok(
          value(await scrape(metricsBase + i + 1), 'x0t_receipts_total{outcome="accepted"}') >= 1,
          `${r.name} counted accepted receipts`,
        );
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
    // The relays this payer paid: those on its circuits (three, or more if a circuit was replaced).
    const paid = RELAYS.filter((r) => (signed.get(r.operator) ?? 0n) > 0n).map((r) => r.operator);
    assert.ok(paid.length >= 3, "the payer signed receipts to the three hops it used");
    // Every cell is priced at a third of a full one (CELL_PRICE_BYTES): each hop's third of the bytes.
    const signedThird = paid.filter((o) => signed.get(o)! >= BigInt(size) / 3n);
    assert.ok(signedThird.length >= 3, "the payer signed each of the 3 hops its third of the download");
    const rpc = (method: string, params: unknown[] = []) =>
      client.request({ method: method as never, params: params as never });
    const warpPast = async (target: bigint) => {
      const [, endsAt] = await rewards.read.currentEpochEnd();
      const block = await client.getBlock();
      if (block.timestamp < endsAt) await rpc("evm_increaseTime", [Number(endsAt - block.timestamp) + 1]);
      await rpc("evm_mine");
      assert.ok((await rewards.read.currentEpoch()) >= target);
    };
    /** Polls (bounded) until `check` is true; the relays act on their own settlement timers (5 s). */
    const until = async (what: string, check: () => Promise<boolean>) => {
      for (let i = 0; i < 120; i++) {
        if (await check()) return;
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.fail(`timed out waiting: ${what}`);
    };
    await warpPast(epoch + 1n);
    await until("the chain paid each relay everything the payer signed it", async () => {
      for (const o of paid)
        if ((await credit.read.channelOf([clientKey.address, o])).bytesPaid < signed.get(o)!) return false;
      return true;
    });
    await warpPast(epoch + 2n);
    const paidEpochs = async () =>
      (await eventsOf("BandwidthCredit", "CreditConsumed")).filter((e) => (e.args.epoch as bigint) <= epoch);
    await until("every relay claims every epoch it was paid for", async () => {
      const claimed = await eventsOf("EpochRewards", "RewardClaimed");
      return (await paidEpochs()).every((c) =>
        claimed.some((e) => e.args.epoch === c.args.epoch && e.args.relayer === c.args.relayer),
      );
    });
    // One view of the chain at one block: the relays keep settling (a late receipt dated the next
    // epoch, say) while the test reads, so every event and balance below is read at `viewBlock`.
    const viewBlock = await client.getBlockNumber();
    const view = { blockNumber: viewBlock };
    const consumed = await eventsOf("BandwidthCredit", "CreditConsumed", viewBlock);
    const settledBatches = await eventsOf("BandwidthCredit", "CreditSettled", viewBlock);
    const claimed = await eventsOf("EpochRewards", "RewardClaimed", viewBlock);
    const attested = await eventsOf("EpochRewards", "UptimeAttested", viewBlock);
    for (const { operator: o, name } of RELAYS) {
      const mine = consumed.filter((e) => e.args.relayer === o && (e.args.epoch as bigint) <= epoch);
      if (!paid.includes(o)) {
        assert.equal(mine.length, 0, `${name} carried nothing of the payer's and was paid nothing`);
        assert.equal(await token.read.balanceOf([o], view), PAYOUT - PAYOUT / 100n - STAKE, `${name}: stake only`);
        continue;
      }
      assert.ok(mine.length >= 1, `${name} was paid from the payer's lock`);
      // Both ends count every cell at a third of a full cell: what the chain paid is what was counted.
      assert.equal(
        sum(mine, "bytesUsed"),
        sum(mine, "cells") * CELL_PRICE_BYTES,
        "bytes paid = cells x CELL_PRICE_BYTES",
      );
      for (const paidEpoch of new Set(mine.map((e) => e.args.epoch as bigint))) {
        const params = (await rewards.read.epochInfo([paidEpoch]))[0].params;
        // docs/economics.md: per receipt base = min(cells x rewardPerCell, value x relayShare), and
        // with attested uptime boosted = the same terms x (1 + bonus) (RewardMath.receiptReward).
        const bonus = BigInt(params.uptimeBonusBps);
        const expected = mine
          .filter((e) => e.args.epoch === paidEpoch)
          .reduce(
            (total, e) => {
              const byCells = (e.args.cells as bigint) * params.rewardPerCell;
              const byValue = (e.args.value as bigint) * BigInt(params.relayShareBps);
              const base = byCells < byValue / 10_000n ? byCells : byValue / 10_000n;
              const bCells = (byCells * (10_000n + bonus)) / 10_000n;
              const bValue = (byValue * (10_000n + bonus)) / 100_000_000n;
              return { base: total.base + base, boosted: total.boosted + (bCells < bValue ? bCells : bValue) };
            },
            { base: 0n, boosted: 0n },
          );
        const boosted = attested.some((e) => e.args.relayer === o && e.args.epoch === paidEpoch);
        const got = claimed.filter((e) => e.args.relayer === o && e.args.epoch === paidEpoch);
        assert.equal(got.length, 1);
        assert.equal(
          got[0]!.args.amount,
          boosted ? expected.boosted : expected.base,
          `${name}, epoch ${paidEpoch}: ${boosted ? "99% (uptime attested)" : "90%"} of what its receipts released`,
        );
      }
      const allClaims = sum(
        claimed.filter((e) => e.args.relayer === o),
        "amount",
      );
      assert.equal(await token.read.balanceOf([o], view), PAYOUT - PAYOUT / 100n - STAKE + allClaims);
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
    const [freeBytes, freeEscrow] = await credit.read.creditOf([PAYER], view);
    let lockedEscrow = 0n;
    for (const { operator } of RELAYS) lockedEscrow += (await credit.read.lockOf([PAYER, operator], view)).escrow;
    assert.equal(freeEscrow + lockedEscrow + released, X0T, "the payer's 1 X0T: free + locked + released");
    assert.ok(freeBytes < 1_000_000_000n);
    console.log(
      `    6 MiB through 3 paid hops (${carried.join(", ")}): released ${released} wei, minted ${minted}, burned ${burned}, treasury +${toTreasury}`,
    );

    // The web app: up at "ready", or built in the background meanwhile (first start) and then up.
    const web = await run.waitFor(/web app(?: on|:\s+) (http:\/\/127\.0\.0\.1:\d+)/, 240_000);
    const webUrl = /web app(?: on|:\s+) (http:\/\/127\.0\.0\.1:\d+)/.exec(web)![1]!;
    assert.equal(webUrl, `http://127.0.0.1:${webPort}`);
    assert.equal((await fetch(webUrl)).status, 200);

    // Ctrl-C: every process it started is stopped, the pid file emptied, exit code 0.
    const recorded = readPidFile(pidFile)!.parts;
    run.killGroup("SIGINT");
    assert.deepEqual(await run.exited, { code: 0, signal: null });
    assert.match(run.output(), /SIGINT: stopping \d+ processes/);
    for (const p of recorded) assert.equal(alive(p.pid), false, `${p.name} (pid ${p.pid}) stopped`);
    await assert.rejects(client.getChainId(), "the chain must be gone after Ctrl-C");
    assert.equal(await listening(socksPort), false, "the SOCKS5 entry is gone");
    assert.equal(readFileSync(pidFile, "utf8"), "", "the pid file lists nothing");
  });

  it("after a SIGKILL of npm start, the next start stops what it left and starts cleanly; a relay that dies is named and everything stops", async () => {
    await cleanUp();
    // A start killed half way (the terminal closed, say): its nodes live on, holding the ports.
    const crashed = start({ X0T_WEB: "off" });
    await crashed.waitFor(/^\[ ?8\/11\]/m, 180_000);
    crashed.killGroup("SIGKILL");
    await crashed.exited;
    const orphans = readPidFile(pidFile)!.parts;
    assert.ok(orphans.length >= 7, "chain, five relays and the entry were recorded");
    for (const p of orphans) assert.ok(alive(p.pid), `${p.name} outlived npm start`);
    assert.ok(await listening(chainPort), "the orphaned chain still holds its port");

    const run = start({ X0T_WEB: "off" });
    const output = await run.waitFor(/ready in [\d.]+ s since npm start/, 180_000);
    assert.match(
      output,
      new RegExp(`stopped ${orphans.length} processes left by a run that did not stop cleanly: chain \\(pid \\d+\\)`),
    );
    for (const p of orphans) assert.equal(alive(p.pid), false, `${p.name} of the dead run was stopped`);
    assert.match(output, /the previous run's logs and data \(of a chain that is gone\) moved to .*previous\//);
    assert.ok(existsSync(join(stateDir, "previous", "data", "payer.db")), "the dead run's accounting is kept aside");
    assert.match(await curlThrough(`http://127.0.0.1:${demoPort}/`), /came to you through a 3-hop/);

    // A relay dies: npm start names it, shows the end of its log, stops everything, exits 1.
    const now = readPidFile(pidFile)!.parts;
    const victim = now.find((p) => p.name === "relay-3")!;
    process.kill(victim.pid, "SIGKILL");
    const { code } = await run.exited;
    assert.equal(code, 1);
    assert.match(run.output(), /✗ relay-3: killed by SIGKILL/);
    assert.match(run.output(), /last lines of \S*relay-3\.log:/);
    assert.match(run.output(), /info relay ready: relay=relay-3/, "its log, made readable");
    await eventually("every process of the run stopped", () => now.every((p) => !alive(p.pid)), 10_000);
    assert.equal(await listening(socksPort), false);
    assert.equal(await listening(chainPort), false);
  });
});

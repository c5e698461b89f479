/**
 * `npm run bench:settlement` (`hardhat run bench/settlement.ts`; `npm run bench` runs it first):
 * what settlement costs, beside baselines measured in the same run. Goals: ../shared/PERFORMANCE.md.
 *
 * 1. Receipt sign + verify against sealing the N cells a receipt covers with AES-256-GCM.
 * 2. SQLite receipt writes/s with the store's real settings (WAL, synchronous=NORMAL).
 * 3. In-band payment on vs off, same run (issue 13): the protocol is deployed on Hardhat's
 *    in-process EVM; three relays with a real PaymentGate each (ChannelReader on that chain,
 *    receipts verified and stored in SQLite) and three relays without one, all running IN THIS
 *    PROCESS beside the client (the gate needs the in-process chain), the blob server in a child
 *    process. The same download goes through 1 and 3 hops unpaid and paid with receipts every 256
 *    cells (npm start's default) and every 1024, in interleaved rounds (the order rotates each
 *    round); medians. The relay's payment work is then timed alone on a real gate (`gate.cell` per
 *    cell, `gate.receipt` per receipt) and converted to CPU seconds per GB a relay carries.
 * 4. Gas per settled receipt, from the gas report's own measurement (test/helpers/gas.ts).
 *
 * Env: X0T_RECEIPT_CELLS (default 1024) for 1; X0T_BENCH_INBAND_MIB (default 96) and
 * X0T_BENCH_ROUNDS (default 5, 3..10) for 3; X0T_BENCH_SETTLEMENT_OUT: a file to write every
 * figure to as one JSON object (bench/dataplane.ts sets it and merges the figures into its own).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { network } from "hardhat";
import { type Address, getAddress, type LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { ClientKeys } from "../relayer/src/accounting/client-keys.ts";
import { CELL_PRICE_BYTES, PaymentGate } from "../relayer/src/accounting/gate.ts";
import { PayerChannels } from "../relayer/src/accounting/payer.ts";
import {
  epochRewardsDomain,
  type SignedReceipt,
  signReceipt,
  verifyReceipt,
} from "../relayer/src/accounting/receipts.ts";
import { AccountingStore } from "../relayer/src/accounting/store.ts";
import { ChannelReader } from "../relayer/src/chain/reader.ts";
import { type CircuitPayer, ClientCircuit } from "../relayer/src/circuit/client.ts";
import { CircuitMux } from "../relayer/src/circuit/mux.ts";
import { Link } from "../relayer/src/link/link.ts";
import type { RelayNode } from "../relayer/src/node/relay.ts";
import { hopsOf, startRelays } from "../test/relayer/helpers.ts";
import { measureGas } from "../test/helpers/gas.js";
import { buyCredit, deployProtocol, GB, lockFor, registerRelayer, X0T } from "../test/helpers/protocol.js";

const N = BigInt(process.env.X0T_RECEIPT_CELLS ?? 1024);
const INBAND_MIB = Math.max(8, Math.min(1024, Number(process.env.X0T_BENCH_INBAND_MIB ?? 96)));
const ROUNDS = Math.max(3, Math.min(10, Number(process.env.X0T_BENCH_ROUNDS ?? 5)));
const OUT = process.env.X0T_BENCH_SETTLEMENT_OUT;
const CELL = 16_384;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const f = (x: number, d = 2) => x.toFixed(d);
const dir = mkdtempSync(join(tmpdir(), "x0t-bench-settlement-"));
const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** Every figure, for X0T_BENCH_SETTLEMENT_OUT: name → numbers. */
const figures: Record<string, Record<string, number | string | boolean | null>> = {};
function record(name: string, data: Record<string, number | string | boolean | null>): void {
  const clean: Record<string, number | string | boolean | null> = {};
  for (const [k, v] of Object.entries(data)) clean[k] = typeof v === "number" && !Number.isFinite(v) ? null : v;
  figures[name] = clean;
}
const met = (ok: boolean) => (ok ? "met" : "**missed**");
function row(what: string, value: string, baseline: string, ratio: string, goal: string) {
  console.log(`| ${what} | ${value} | ${baseline} | ${ratio} | ${goal} |`);
}

// ---------------------------------------------------------------------------------------------
// 1 + 2. Receipt crypto against cell sealing; SQLite writes.
// ---------------------------------------------------------------------------------------------
async function microFigures(): Promise<void> {
  const key = privateKeyToAccount(generatePrivateKey());
  const relayer = privateKeyToAccount(generatePrivateKey()).address;
  const domain = epochRewardsDomain(84532, "0x0000000000000000000000000000000000000001");
  const sign: number[] = [];
  const verify: number[] = [];
  const native: number[] = [];
  const known = new ClientKeys(domain, relayer);
  const receipts: SignedReceipt[] = [];
  for (let i = 1; i <= 200; i++) {
    let t = performance.now();
    const r = await signReceipt(key, domain, {
      relayer,
      epoch: 7n,
      cells: N * BigInt(i),
      bytes: N * BigInt(i) * 5_462n,
    });
    sign.push(performance.now() - t);
    t = performance.now();
    if (!(await verifyReceipt(domain, relayer, 7n, r))) throw new Error("a receipt did not verify");
    verify.push(performance.now() - t);
    t = performance.now();
    // The first call learns the key (recovery, as a PAY_HELLO would); the rest are native.
    if (!(await known.verifyReceipt(7n, r))) throw new Error("a receipt did not verify natively");
    if (i > 1) native.push(performance.now() - t);
    receipts.push(r);
  }
  // Baseline: sealing the N cells a receipt covers (one GCM pass each; a 3-hop relay does more).
  const cell = randomBytes(CELL);
  const keyBytes = randomBytes(32);
  const seal: number[] = [];
  for (let round = 0; round < 5; round++) {
    const t = performance.now();
    for (let i = 0n; i < N; i++) {
      const c = createCipheriv("aes-256-gcm", keyBytes, randomBytes(12));
      c.update(cell);
      c.final();
      c.getAuthTag();
    }
    seal.push(performance.now() - t);
  }
  const receiptMs = median(sign) + median(native);
  const sealMs = median(seal);
  const store = new AccountingStore(join(dir, "full.sqlite"));
  const count = 2_000;
  const t = performance.now();
  for (let i = 0; i < count; i++) {
    const r = receipts[i % receipts.length]!;
    store.saveReceipt(BigInt(Math.floor(i / receipts.length)), {
      ...r,
      key: `0x${(i + 1).toString(16).padStart(40, "0")}`,
    });
  }
  const fullRate = count / ((performance.now() - t) / 1000);
  store.close();
  const share = (100 * receiptMs) / (receiptMs + sealMs);
  row(
    "receipt sign (payer) + native verify (relay), median ms",
    `${f(receiptMs, 3)} (sign ${f(median(sign), 3)}, native verify ${f(median(native), 3)}; JS recovery ${f(median(verify), 3)})`,
    `GCM seal of the ${N} cells it covers: ${f(sealMs)} ms`,
    `${f(share)}% of the CPU of those cells`,
    `<= 2%: ${met(share <= 2)}`,
  );
  record("receiptSignVerifyMs", {
    value: receiptMs,
    signMs: median(sign),
    verifyMs: median(native),
    recoverMs: median(verify),
    cells: Number(N),
    baselineSealMs: sealMs,
    sharePercent: share,
  });
  const needed = 125e6 / CELL / Number(N);
  row("SQLite receipt writes (WAL, synchronous=NORMAL, checkpointed every 2 s), per s", f(fullRate, 0), "", "", "");
  row(
    `receipts a relay needs per s at 1 Gbit/s, one per ${N} cells`,
    f(needed, 1),
    `SQLite capacity ${f(fullRate, 0)}/s`,
    `${f((needed / fullRate) * 100, 3)}% of it`,
    "",
  );
  record("sqliteReceiptWritesPerSecond", { value: fullRate, neededAt1Gbit: needed });
}

// ---------------------------------------------------------------------------------------------
// 3. In-band payment on vs off.
// ---------------------------------------------------------------------------------------------
/** Starts bench/servers.ts blob in a child process; resolves with its port. */
function startBlob(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const child = spawn(process.execPath, [resolve("bench/servers.ts"), "blob", "0"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(child);
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no ready line from the blob server: ${out}`)), 30_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    });
  });
}

/** Downloads `size` bytes through a fresh circuit; MB/s from the first request byte to the last byte. */
async function download(
  relays: RelayNode[],
  blobPort: number,
  size: number,
  payer?: CircuitPayer,
): Promise<{ mbps: number; cpuSeconds: number }> {
  const hops = hopsOf(relays);
  const link = await Link.connect(hops[0]!.host, hops[0]!.port, hops[0]!.keys);
  const circuit = await ClientCircuit.build(new CircuitMux(link), hops, payer ? { payer } : {});
  try {
    const stream = await circuit.openStream({ type: "ipv4", host: "127.0.0.1", port: blobPort });
    const cpu0 = process.cpuUsage();
    const t = performance.now();
    stream.write(`GET /blob/${size} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`);
    let got = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) got += chunk.length;
    const seconds = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (got < size) throw new Error(`download through ${hops.length} hops ended after ${got} of ${size} bytes`);
    return { mbps: size / seconds / 1e6, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  } finally {
    circuit.close();
    link.close();
  }
}

/** A gate that counts the receipts it was handed (a refused one would also cut the download). */
function countingGate(gate: PaymentGate): { gate: PaymentGate; stats: { receipts: number } } {
  const stats = { receipts: 0 };
  const receipt = gate.receipt.bind(gate);
  gate.receipt = (...args: Parameters<PaymentGate["receipt"]>) => {
    stats.receipts += 1;
    return receipt(...args);
  };
  return { gate, stats };
}

async function inbandFigures(): Promise<void> {
  const connection = await network.create();
  // Hour-long epochs: no epoch boundary during the run (receipts are dated by epoch).
  const p = await deployProtocol(connection, { epochLength: 3_600 });
  const operators = p.wallets.slice(3, 6);
  for (const o of operators) await registerRelayer(p, o);
  const epoch = await p.rewards.read.currentEpoch();
  const intervals = [256n, 1024n];
  /** One payer account (own credit, own locks) and client key per receipt interval. */
  const payers: Array<{ interval: bigint; key: LocalAccount; channels: PayerChannels }> = [];
  for (const [i, interval] of intervals.entries()) {
    const wallet = p.wallets[6 + i]!;
    const key: LocalAccount = await buyCredit(p, wallet, 100n * X0T);
    for (const o of operators) await lockFor(p, wallet, getAddress(o.account.address), 30n * GB, epoch + 2n);
    payers.push({
      interval,
      key,
      channels: new PayerChannels({
        key,
        receiptDomain: p.receiptDomain,
        creditDomain: p.creditDomain,
        epoch: () => epoch,
        everyCells: interval,
        everyMs: 10_000, // npm start's default receiptEverySeconds
      }),
    });
  }
  // The relay side as relayer/src/node/run.ts builds it, with the node config's defaults
  // (allowance 16 MiB, slack 2048 cells (the node default is 1024, for its default 256-cell receipts), ChannelReader's 10 s cache), SQLite WAL + NORMAL on disk.
  const gates: Array<ReturnType<typeof countingGate>> = [];
  const paid: RelayNode[] = [];
  for (const [i, o] of operators.entries()) {
    const relayer = getAddress(o.account.address);
    const store = new AccountingStore(join(dir, `relay${i}.sqlite`));
    const reader = new ChannelReader(p.publicClient as never, {
      credit: p.credit.address,
      rewards: p.rewards.address,
      relayer,
    });
    // Hellos checked and their keys learnt; receipts then verified natively (node/run.ts does the same).
    const keys = new ClientKeys(p.receiptDomain, relayer);
    const timed = countingGate(
      new PaymentGate({
        chain: reader,
        store,
        verify: (e, r) => keys.verifyReceipt(e, r),
        allowanceBytes: 16n * 1024n * 1024n,
        // Receipts must keep up within the slack: it has to exceed the payer's interval (1024 here)
        // by the cells in flight, so the relays run with twice the largest interval.
        slackCells: 2_048n,
        slackBytes: 2_048n * CELL_PRICE_BYTES,
      }),
    );
    gates.push(timed);
    paid.push(
      ...(await startRelays(1, {
        payments: timed.gate,
        checkPayHello: (binding, hello) => keys.checkHello(binding, hello),
      })),
    );
  }
  const free = await startRelays(3);
  const blobPort = await startBlob();
  const operatorAddresses = operators.map((o) => getAddress(o.account.address) as Address);
  const payerFor = (interval: bigint, hops: number): CircuitPayer => ({
    channels: payers.find((x) => x.interval === interval)!.channels,
    operators: operatorAddresses.slice(0, hops),
  });

  type Mode = "off" | "256" | "1024";
  const modes: Mode[] = ["off", "256", "1024"];
  const size = INBAND_MIB * 1024 * 1024;
  const mbps: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  const ratios: Record<string, number[]> = {};
  const rec = (m: Record<string, number[]>, k: string, v: number) => (m[k] ??= []).push(v);
  // Warm-up: JIT, links, the gates' first chain reads.
  for (const hops of [1, 3]) {
    await download(free.slice(0, hops), blobPort, 8 << 20);
    for (const interval of intervals) await download(paid.slice(0, hops), blobPort, 8 << 20, payerFor(interval, hops));
  }
  const receiptsBefore = gates.map((g) => g.stats.receipts);
  const countedBefore = payers.map((x) => operatorAddresses.map((a) => x.channels.counted(a).cells));
  const loadStart = (await import("node:os")).loadavg()[0]!;
  for (let round = 0; round < ROUNDS; round++) {
    for (const hops of [1, 3]) {
      const result: Partial<Record<Mode, number>> = {};
      // Rotate the order each round so that no mode always runs first (or right after GC debt).
      for (let k = 0; k < modes.length; k++) {
        const mode = modes[(round + k) % modes.length]!;
        const r =
          mode === "off"
            ? await download(free.slice(0, hops), blobPort, size)
            : await download(paid.slice(0, hops), blobPort, size, payerFor(BigInt(mode), hops));
        result[mode] = r.mbps;
        rec(mbps, `${hops}/${mode}`, r.mbps);
        rec(cpu, `${hops}/${mode}`, r.cpuSeconds / (size / 1e9));
      }
      for (const mode of ["256", "1024"] as const) rec(ratios, `${hops}/${mode}`, result[mode]! / result.off!);
    }
  }
  const loadEnd = (await import("node:os")).loadavg()[0]!;
  // Every receipt was judged "ok" (a refusal would have stopped the payer and cut a download).
  const perRelay = gates.map((g, i) => g.stats.receipts - receiptsBefore[i]!);
  // Bytes each relay carried for payers in the measured rounds: relay 1 every paid download, 2 and
  // 3 only the 3-hop ones. Cells: what the payers counted for it.
  const paidDownloads = (hops: number) => ROUNDS * intervals.length * (hops === 1 ? 2 : 1);
  const gbCarried = operatorAddresses.map((_, i) => (paidDownloads(i === 0 ? 1 : 3) * size) / 1e9);
  const cellsCarried = operatorAddresses.map((a, i) =>
    payers.reduce((s, x, j) => s + Number(x.channels.counted(a).cells - countedBefore[j]![i]!), 0),
  );

  // The relay's payment work, timed on relay 1's real gate with nothing else running (during the
  // downloads a receipt's verification yields to the event loop, so its wall time there is not
  // its CPU): a circuit of the 1024 payer's key; per step 256 cells (`gate.cell`, timed), then a
  // receipt for the gate's count signed by the payer's key (not timed) and judged (`gate.receipt`,
  // timed: signature recovery, cached chain reads, judgement, SQLite commit). Bounded loop.
  const g0 = gates[0]!.gate;
  const bench = payers[1]!;
  const circuitId = 0x7fff_fff0;
  g0.open(circuitId);
  await g0.hello(circuitId, bench.key.address);
  const receiptMs: number[] = [];
  const receiptCpuMs: number[] = [];
  let cellMs = 0;
  let cellCalls = 0;
  for (let step = 0; step < 120; step++) {
    let t = performance.now();
    for (let i = 0; i < 256; i++) if (!g0.cell(circuitId).serve) throw new Error("the gate stopped the bench payer");
    cellMs += performance.now() - t;
    cellCalls += 256;
    const counted = g0.counted(bench.key.address);
    const signed = await signReceipt(bench.key, p.receiptDomain, {
      relayer: operatorAddresses[0]!,
      epoch,
      cells: counted.cells,
      bytes: counted.bytes,
    });
    t = performance.now();
    const cpu0 = process.cpuUsage();
    const verdict = await g0.receipt(circuitId, epoch, signed);
    const cpu = process.cpuUsage(cpu0);
    receiptMs.push(performance.now() - t);
    receiptCpuMs.push((cpu.user + cpu.system) / 1e3);
    if (!verdict.serve) throw new Error(`relay 1 refused a receipt: ${verdict.reason}`);
  }
  g0.close(circuitId);
  const msPerReceipt = median(receiptCpuMs.slice(20));
  const wallMsPerReceipt = median(receiptMs.slice(20));
  const cellNs = (cellMs * 1e6) / cellCalls;

  console.log(
    `\nIn-band payment, same run: relays, client and chain (Hardhat in-process EVM) in this process; blob server a child process. ${INBAND_MIB} MiB per download, ${ROUNDS} interleaved rounds, medians; load average ${f(loadStart)} → ${f(loadEnd)} on ${(await import("node:os")).cpus().length} cores.\n`,
  );
  console.log(
    "| circuit | payment off MB/s | on, receipt every 256 cells: MB/s (ratio on/off) | on, every 1024 | CPU s/GB of this process off / 256 / 1024 |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const hops of [1, 3]) {
    const off = median(mbps[`${hops}/off`]!);
    const on256 = median(mbps[`${hops}/256`]!);
    const on1024 = median(mbps[`${hops}/1024`]!);
    const r256 = median(ratios[`${hops}/256`]!);
    const r1024 = median(ratios[`${hops}/1024`]!);
    console.log(
      `| ${hops} hop${hops > 1 ? "s" : ""} | ${f(off, 0)} | ${f(on256, 0)} (${f(r256)}; paired ${ratios[`${hops}/256`]!.map((x) => f(x)).join(", ")}) | ${f(on1024, 0)} (${f(r1024)}; paired ${ratios[`${hops}/1024`]!.map((x) => f(x)).join(", ")}) | ${f(median(cpu[`${hops}/off`]!))} / ${f(median(cpu[`${hops}/256`]!))} / ${f(median(cpu[`${hops}/1024`]!))} |`,
    );
    record(`inband${hops}HopMBps`, {
      off,
      on256,
      on1024,
      ratio256: r256,
      ratio1024: r1024,
      cpuSecondsPerGBOff: median(cpu[`${hops}/off`]!),
      cpuSecondsPerGB256: median(cpu[`${hops}/256`]!),
      cpuSecondsPerGB1024: median(cpu[`${hops}/1024`]!),
    });
  }
  // Relay-side payment work per GB a relay carries (both intervals mixed: per receipt it is the
  // same work; receipts per GB follow the interval).
  const totalReceipts = perRelay.reduce((s, r) => s + r, 0);
  const cellsPerGB = cellsCarried.reduce((s, c) => s + c, 0) / gbCarried.reduce((s, g) => s + g, 0);
  const relaySecondsPerGB = (interval: number) =>
    ((cellsPerGB / interval) * msPerReceipt + (cellsPerGB * cellNs) / 1e6) / 1e3;
  console.log(
    `\n| relay-side payment work (relay 1's real gate, timed alone after the downloads) | value |\n| --- | ---: |\n| receipts judged in the measured rounds (all ok) | ${totalReceipts} (${perRelay.join(" / ")} per relay) |\n| gate.receipt per receipt, median (verify, chain cache, judge, SQLite commit): CPU ms / wall ms | ${f(msPerReceipt, 3)} / ${f(wallMsPerReceipt, 3)} |\n| gate.cell per cell, ns | ${f(cellNs, 0)} |\n| cells a relay counts per GB of download | ${f(cellsPerGB, 0)} |\n| relay payment CPU per GB carried, receipts every 256 / 1024 cells, ms | ${f(relaySecondsPerGB(256) * 1e3, 1)} / ${f(relaySecondsPerGB(1024) * 1e3, 1)} |`,
  );
  console.log(
    "(bench/dataplane.ts divides these by a middle relay's CPU s/GB, measured in its own process in the same `npm run bench`, for the share of relay CPU.)",
  );
  record("relayPaymentWork", {
    receipts: totalReceipts,
    msPerReceipt,
    wallMsPerReceipt,
    cellNs,
    cellsPerGB,
    relayCpuSecondsPerGB256: relaySecondsPerGB(256),
    relayCpuSecondsPerGB1024: relaySecondsPerGB(1024),
  });
  record("inbandRun", {
    mib: INBAND_MIB,
    rounds: ROUNDS,
    inProcess: "relays, client and chain in one process",
    loadStart,
    loadEnd,
  });
  for (const r of [...paid, ...free]) await r.close();
}

// ---------------------------------------------------------------------------------------------
// 4. Gas per settled receipt (the gas report's measurement, on a fresh in-process chain).
// ---------------------------------------------------------------------------------------------
async function gasFigures(): Promise<void> {
  const rows = await measureGas(await network.create());
  const gasOf = (call: string) => {
    const r = rows.find((x) => x.call === call);
    if (!r) throw new Error(`the gas report has no row "${call}"`);
    return Number(r.gas);
  };
  const marginal = gasOf("marginal gas per receipt");
  const batch = gasOf("EpochRewards.submitReceipts, 100 receipts, next epoch");
  const first = gasOf("marginal gas per first receipt of a channel");
  console.log(
    "\n| gas per settled receipt (test/helpers/gas.ts, as `npm run gas`) | gas | goal |\n| --- | ---: | --- |",
  );
  console.log(
    `| marginal, 100-receipt batch, channels open | ${marginal.toLocaleString("en-US")} | <= 30,000: ${met(marginal <= 30_000)} |`,
  );
  console.log(`| average, same batch (submitReceipts gas / 100) | ${(batch / 100).toLocaleString("en-US")} | |`);
  console.log(`| marginal, a channel's first receipt (new storage slot) | ${first.toLocaleString("en-US")} | |`);
  record("gasPerSettledReceipt", {
    marginal,
    averageIn100Batch: batch / 100,
    firstOfChannel: first,
    goal: 30_000,
    met: marginal <= 30_000,
  });
}

console.log(`x0tta6bl4 settlement benchmark — node ${process.version}\n`);
console.log("| figure | value | baseline (same run) | ratio | goal |");
console.log("| --- | --- | --- | --- | --- |");
await microFigures();
await inbandFigures();
await gasFigures();
if (OUT) writeFileSync(OUT, JSON.stringify({ node: process.version, figures }));
process.exit(0);

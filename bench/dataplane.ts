/**
 * `npm run bench`: the data plane's figures, each printed beside a baseline measured in the same
 * run on the same machine (these machines are shared and noisy: read the ratios). Goals are those
 * of ../shared/PERFORMANCE.md. Every process listens on 127.0.0.1 only.
 *
 * X0T_BENCH_MIB (default 256) sets the size of each throughput download.
 */
import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { SocksClient } from "socks";
import { ClientCircuit } from "../relayer/src/circuit/client.ts";
import { CircuitMux } from "../relayer/src/circuit/mux.ts";
import { respondToHandshake, startClientHandshake } from "../relayer/src/crypto/handshake.ts";
import { generateStaticKeys, initCrypto, mlkem, publicKeysOf } from "../relayer/src/crypto/keys.ts";
import { Link } from "../relayer/src/link/link.ts";
import { readDirectory } from "../relayer/src/node/directory.ts";

const run = promisify(execFile);
const MIB = Number(process.env.X0T_BENCH_MIB ?? 256);
const children: ChildProcess[] = [];
const state = mkdtempSync(join(tmpdir(), "x0t-bench-"));
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(state, { recursive: true, force: true });
});

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number;
const f = (x: number, d = 2) => x.toFixed(d);
function row(what: string, value: string, baseline: string, ratio: string, goal: string) {
  console.log(`| ${what} | ${value} | ${baseline} | ${ratio} | ${goal} |`);
}

/** Starts a helper process and resolves with the port it printed ("ready <port>"). */
function startProcess(args: string[], ready: RegExp): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolvePort, reject) => {
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, X0T_LOG_LEVEL: "info" },
    });
    children.push(child);
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no ready line from ${args.join(" ")}: ${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePort({ child, port: Number(m[1] ?? 0) });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
  });
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0);
}

async function curlSpeed(url: string, proxy?: string, parallel = 1): Promise<number> {
  const once = async () => {
    const args = [
      "-s",
      "-o",
      "/dev/null",
      "--max-time",
      "300",
      "-w",
      "%{size_download} %{time_total}",
      ...(proxy ? ["-x", proxy] : []),
      url,
    ];
    const { stdout } = await run("curl", args);
    const [bytes, seconds] = stdout.trim().split(" ").map(Number);
    return { bytes: bytes ?? 0, seconds: seconds ?? 1 };
  };
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: parallel }, once));
  const bytes = results.reduce((a, r) => a + r.bytes, 0);
  if (parallel === 1) return bytes / (results[0]?.seconds ?? 1) / 1e6;
  return bytes / ((performance.now() - started) / 1000) / 1e6;
}

/** Best of three, to damp the noise of a shared machine. */
async function best(fn: () => Promise<number>): Promise<number> {
  let top = 0;
  for (let i = 0; i < 3; i++) top = Math.max(top, await fn());
  return top;
}

async function timeToFirstByte(port: number, viaSocks: number | undefined, samples: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    const socket = viaSocks
      ? (
          await SocksClient.createConnection({
            proxy: { host: "127.0.0.1", port: viaSocks, type: 5 },
            command: "connect",
            destination: { host: "127.0.0.1", port },
          })
        ).socket
      : await new Promise<Socket>((res) => {
          const s: Socket = connect(port, "127.0.0.1", () => res(s));
        });
    await new Promise<void>((res) => {
      socket.once("data", () => res());
      socket.write("GET /blob/100 HTTP/1.0\r\n\r\n");
    });
    times.push(performance.now() - started);
    socket.destroy();
  }
  return times;
}

async function main() {
  await initCrypto();
  const cli = resolve("relayer/src/cli.ts");
  const servers = resolve("bench/servers.ts");
  console.log(`x0tta6bl4 data-plane benchmark — node ${process.version}, downloads of ${MIB} MiB, loopback\n`);
  console.log("| figure | x0tta6bl4 | baseline (same run) | ratio | goal |");
  console.log("| --- | ---: | ---: | ---: | --- |");

  // 1. Handshake CPU, both sides, against the bare ML-KEM-768 keygen+encaps+decaps.
  const relayKeys = generateStaticKeys();
  const pub = publicKeysOf(relayKeys);
  const hs: number[] = [];
  const kemOnly: number[] = [];
  const kem = mlkem();
  for (let i = 0; i < 400; i++) {
    let t = performance.now();
    const c = startClientHandshake(pub);
    c.finish(respondToHandshake(relayKeys, c.hello).reply);
    hs.push(performance.now() - t);
    t = performance.now();
    const [ek, dk] = kem.generateKeyPair();
    kem.decap(kem.encap(ek)[0], dk);
    kemOnly.push(performance.now() - t);
  }
  const hsM = pct(hs.slice(50), 0.5);
  row(
    "hybrid hop handshake, both sides, CPU ms (median / p99)",
    `${f(hsM)} / ${f(pct(hs.slice(50), 0.99))}`,
    `${f(pct(kemOnly.slice(50), 0.5))} (ML-KEM keygen+encaps+decaps)`,
    f(hsM / pct(kemOnly.slice(50), 0.5)),
    "<= 1.5 ms",
  );

  // Processes: blob server, 3 relays (last one exit), two entries (1 and 3 hops), baselines.
  const blob = await startProcess([servers, "blob", "0"], /ready (\d+)/);
  const relayDir = join(state, "relays");
  const relays = [];
  for (let i = 1; i <= 3; i++) {
    const exit = i === 3 ? ["--exit", "--allow-private-targets"] : [];
    // r2 also hosts the memory test's 2,000 circuits: lift its CREATE rate limit.
    const rate = i === 2 ? ["--creates-per-second", "100000"] : [];
    relays.push(
      await startProcess(
        [
          cli,
          "relay",
          "--listen",
          "127.0.0.1:0",
          "--name",
          `r${i}`,
          "--keys",
          join(state, `r${i}.key`),
          "--descriptor-out",
          join(relayDir, `r${i}.json`),
          ...exit,
          ...rate,
        ],
        /relay listening|EXIT POLICY/,
      ),
    );
  }
  for (let i = 1; i <= 3; i++)
    for (let w = 0; w < 300 && !existsSync(join(relayDir, `r${i}.json`)); w++)
      await new Promise((r) => setTimeout(r, 100));
  const entry1 = await startProcess(
    [cli, "entry", "--socks", "127.0.0.1:0", "--directory", relayDir, "--hops", "1"],
    /"SOCKS5 entry listening".*"port":(\d+)/,
  );
  const entry3 = await startProcess(
    [cli, "entry", "--socks", "127.0.0.1:0", "--directory", relayDir, "--hops", "3"],
    /"SOCKS5 entry listening".*"port":(\d+)/,
  );
  const socksDirect = await startProcess([servers, "socks-direct", "0"], /ready (\d+)/);
  const pipe1 = await startProcess([servers, "pipe", "0", String(blob.port)], /ready (\d+)/);
  const pipe2 = await startProcess([servers, "pipe", "0", String(pipe1.port)], /ready (\d+)/);
  const pipe3 = await startProcess([servers, "pipe", "0", String(pipe2.port)], /ready (\d+)/);
  let micro: ChildProcess | undefined;
  if (existsSync("/usr/bin/microsocks")) {
    micro = spawn("/usr/bin/microsocks", ["-i", "127.0.0.1", "-p", "21080"], { stdio: "ignore" });
    children.push(micro);
  }
  await new Promise((r) => setTimeout(r, 500));

  // 2. Circuit build on loopback (links kept, as a running client does).
  const directory = readDirectory(relayDir);
  const path = [
    directory.find((d) => d.name === "r1")!,
    directory.find((d) => d.name === "r2")!,
    directory.find((d) => d.name === "r3")!,
  ];
  const link = await Link.connect(path[0]!.host, path[0]!.port, path[0]!.keys);
  const mux = new CircuitMux(link);
  const builds: number[] = [];
  for (let i = 0; i < 120; i++) {
    const t = performance.now();
    const c = await ClientCircuit.build(mux, path);
    builds.push(performance.now() - t);
    c.close();
  }
  link.close();
  row(
    "3-hop circuit build incl. handshakes, ms (median / p99)",
    `${f(pct(builds.slice(20), 0.5))} / ${f(pct(builds.slice(20), 0.99))}`,
    `${f(3 * hsM)} (3 handshakes' CPU)`,
    "",
    "<= 10 / <= 30 ms",
  );

  // 3. Throughput, one stream.
  const url = (port: number, mib = MIB) => `http://127.0.0.1:${port}/blob/${mib * 1024 * 1024}`;
  const direct = await best(() => curlSpeed(url(blob.port)));
  const plain1 = await best(() => curlSpeed(url(pipe1.port)));
  const plain3 = await best(() => curlSpeed(url(pipe3.port)));
  const socksOnly = await best(() => curlSpeed(url(blob.port), `socks5h://127.0.0.1:${socksDirect.port}`));
  const microS = micro ? await best(() => curlSpeed(url(blob.port), "socks5://127.0.0.1:21080")) : NaN;
  const hop1 = await best(() => curlSpeed(url(blob.port), `socks5h://127.0.0.1:${entry1.port}`));
  const hop3 = await best(() => curlSpeed(url(blob.port), `socks5h://127.0.0.1:${entry3.port}`));
  row("direct curl, MB/s", f(direct, 0), "", "1.00", "");
  row(
    "our SOCKS5 entry alone (no circuit), MB/s",
    f(socksOnly, 0),
    `${f(direct, 0)} direct`,
    f(socksOnly / direct),
    ">= 0.39 of direct",
  );
  row("microsocks (C, Debian), MB/s", f(microS, 0), `${f(direct, 0)} direct`, f(microS / direct), "reference");
  row(
    "one stream, 1 hop, MB/s",
    f(hop1, 0),
    `${f(plain1, 0)} plain 1-hop pipe proxy`,
    f(hop1 / plain1),
    ">= 0.60 of plain",
  );
  row(
    "one stream, 3 hops, MB/s",
    f(hop3, 0),
    `${f(plain3, 0)} plain 3-hop pipe chain`,
    f(hop3 / plain3),
    ">= 0.50 of plain",
  );

  // 4. 16 parallel streams through 3 hops.
  const per = Math.max(8, Math.floor(MIB / 16));
  const par3 = await curlSpeed(url(blob.port, per), `socks5h://127.0.0.1:${entry3.port}`, 16);
  const parPlain = await curlSpeed(url(pipe3.port, per), undefined, 16);
  row(
    "16 parallel streams, 3 hops, total MB/s",
    f(par3, 0),
    `${f(parPlain, 0)} plain 3-hop chain`,
    f(par3 / parPlain),
    ">= 0.50 of plain",
  );

  // 5. Time to first byte of a new stream on a built 3-hop circuit, via SOCKS5.
  await timeToFirstByte(blob.port, entry3.port, 20);
  const ttfb3 = await timeToFirstByte(blob.port, entry3.port, 200);
  const ttfbDirect = await timeToFirstByte(blob.port, undefined, 200);
  row(
    "time to first byte, 3 hops via SOCKS5, ms (median / p99)",
    `${f(pct(ttfb3, 0.5))} / ${f(pct(ttfb3, 0.99))}`,
    `${f(pct(ttfbDirect, 0.5))} direct`,
    f(pct(ttfb3, 0.5) / pct(ttfbDirect, 0.5), 1),
    "<= 3 ms median",
  );

  // 6. Memory: idle circuits on a relay (1-hop circuits to r2), idle streams through entry + exit.
  const r2 = path[1]!;
  const r2pid = relays[1]!.child.pid!;
  const memLink = await Link.connect(r2.host, r2.port, r2.keys);
  const memMux = new CircuitMux(memLink);
  const before = rssKiB(r2pid);
  const idle: ClientCircuit[] = [];
  const N = 2000;
  for (let i = 0; i < N; i++) idle.push(await ClientCircuit.build(memMux, [r2]));
  await new Promise((r) => setTimeout(r, 1000));
  const perCircuit = ((rssKiB(r2pid) - before) * 1024) / N;
  row(
    `memory per idle circuit on a relay (${N} circuits), KiB`,
    f(perCircuit / 1024, 1),
    `${f(before / 1024, 0)} MiB RSS before`,
    "",
    "<= 16 KiB",
  );
  row(
    `projected RSS with 10,000 idle circuits, MB`,
    f((before * 1024 + perCircuit * 10_000) / 1e6, 0),
    "",
    "",
    "< 300 MB",
  );
  memLink.close();

  const e3pid = entry3.child.pid!;
  const exitPid = relays[2]!.child.pid!;
  const streamsBefore = rssKiB(e3pid) + rssKiB(exitPid);
  const held = [];
  const S = 200;
  for (let i = 0; i < S; i++) {
    const { socket } = await SocksClient.createConnection({
      proxy: { host: "127.0.0.1", port: entry3.port, type: 5 },
      command: "connect",
      destination: { host: "127.0.0.1", port: blob.port },
    });
    socket.write("GET /hold HTTP/1.0\r\n\r\n");
    held.push(socket);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const perStream = ((rssKiB(e3pid) + rssKiB(exitPid) - streamsBefore) * 1024) / S;
  row(`memory per open stream, entry + exit (${S} streams), KiB`, f(perStream / 1024, 1), "", "", "<= 128 KiB");
  for (const s of held) s.destroy();
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

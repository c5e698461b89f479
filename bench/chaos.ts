/**
 * `npm run chaos`: a local network of relays as separate processes, steady traffic through the
 * SOCKS5 entry, and faults injected one at a time — SIGKILL (crash), SIGSTOP/SIGCONT (freeze: only
 * liveness checks can tell), added latency and emulated loss, and a hostile relay that corrupts or
 * drops the cells it passes on (bench/chaos-relay.ts) — with, per fault kind, the time to
 * detection (MTTD), the time until new connections succeed again (MTTR), the share of new
 * connections that succeeded and the share of running long downloads that broke.
 *
 *   npm run chaos -- [--relays 12] [--faults 30] [--kinds crash,freeze,latency,loss,corrupt,drop] [--rate 20]
 *                    [--classes 4] [--downloads 4] [--json] [--trace events.jsonl]
 *
 * Mode: each relay in its own network namespace with tc netem where the kernel allows it;
 * otherwise ("loopback+shim") every relay on 127.0.0.1 behind a delaying TCP shim
 * (bench/chaos-shim.ts) that adds latency and holds "lost" chunks for a retransmission timeout.
 * The output names the mode that ran and why. Traffic never leaves this machine.
 *
 * Definitions (docs/self-healing.md): a fault at t0 on a relay that carries circuits; detection is
 * the entry's first reaction naming that relay (a circuit through it closed, or it was suspected)
 * while the fault lasts;
 * a new connection is "hurt" if it failed or took longer than --hurt-ms (2 s); MTTR is the end of
 * the last hurt connection started in the fault's window, minus t0 (0 if none), provided a healthy
 * connection followed it; downloads broken = broken downloads ending in the window / downloads
 * running at t0. Percentiles are nearest-rank.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { initCrypto, publicKeysOf } from "../relayer/src/crypto/keys.ts";
import { descriptorOf } from "../relayer/src/node/directory.ts";
import { loadOrCreateKeys } from "../relayer/src/node/keyfile.ts";
import { freePort } from "../test/helpers/net.ts";

type Kind = "crash" | "freeze" | "latency" | "loss" | "corrupt" | "drop";
const KINDS: readonly Kind[] = ["crash", "freeze", "latency", "loss", "corrupt", "drop"];

const { values: args } = parseArgs({
  options: {
    relays: { type: "string", default: "12" },
    faults: { type: "string", default: "30" },
    kinds: { type: "string", default: KINDS.join(",") },
    rate: { type: "string", default: "20" },
    classes: { type: "string", default: "4" },
    downloads: { type: "string", default: "4" },
    "hurt-ms": { type: "string", default: "2000" },
    json: { type: "boolean", default: false },
    trace: { type: "string" },
  },
});
const int = (name: keyof typeof args, min: number, max: number): number => {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min || v > max)
    throw new Error(`--${name}: expected ${min}..${max}, got ${args[name]}`);
  return v;
};
const RELAYS = int("relays", 4, 64);
const FAULTS = int("faults", 1, 1000);
const RATE = int("rate", 1, 200);
const CLASSES = int("classes", 1, 32);
const DOWNLOADS = int("downloads", 0, 32);
const HURT_MS = int("hurt-ms", 100, 60_000);
const kinds = String(args.kinds)
  .split(",")
  .map((k) => k.trim()) as Kind[];
for (const k of kinds) if (!KINDS.includes(k)) throw new Error(`--kinds: unknown fault "${k}" (${KINDS.join(", ")})`);
/** How long each fault lasts (the window in which detection and recovery are timed), then settle time. */
const WINDOW_MS: Record<Kind, number> = {
  crash: 5_000,
  freeze: 12_000,
  latency: 10_000,
  loss: 10_000,
  corrupt: 10_000,
  drop: 10_000,
};
const SETTLE_MS = 2_000;
/** A suspicion this short is provisional (the entry is checking the relay directly): not counted as blame. */
const PROVISIONAL_MS = 5_000;
const CONN_TIMEOUT_MS = 10_000;
const LATENCY_MS = 300;
const LOSS = { lossRate: 0.3, stallMs: 300 };

const say = (line: string) => process.stderr.write(line + "\n");
const root = resolve(import.meta.dirname, "..");
const state = mkdtempSync(join(tmpdir(), "x0t-chaos-"));
const children = new Set<ChildProcess>();

function cleanup(): void {
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    c.kill("SIGCONT");
    c.kill("SIGKILL");
  }
  rmSync(state, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

/** Whether network namespaces with netem are available here; the probe leaves nothing behind. */
function probeNamespaces(): { mode: string; why: string } {
  const ns = `x0t-chaos-probe-${process.pid}`;
  const sh = (cmd: string[]) => execFileSync(cmd[0] as string, cmd.slice(1), { stdio: "pipe" });
  let created = false;
  try {
    sh(["ip", "netns", "add", ns]);
    created = true;
    sh(["ip", "-n", ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1"]);
    sh(["ip", "-n", ns, "link", "set", "p0", "up"]);
    sh(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "p0", "root", "netem", "delay", "1ms"]);
    return {
      mode: "loopback+shim",
      why: "namespaces and netem work here, but the namespace mode is phase 2 work; ran on loopback",
    };
  } catch (error) {
    const msg = ((error as { stderr?: Buffer }).stderr?.toString() ?? (error as Error).message).trim();
    return {
      mode: "loopback+shim",
      why: created
        ? `network namespaces work but tc netem does not (${msg.split("\n")[0]}): kernel without sch_netem`
        : `no network namespaces (${msg.split("\n")[0]})`,
    };
  } finally {
    if (created) {
      try {
        sh(["ip", "netns", "del", ns]);
      } catch {
        // best effort: nothing else was created
      }
    }
  }
}

/** User + system CPU seconds of a process so far (Linux /proc; 0 where it cannot be read). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect({ host: "127.0.0.1", port }, () => {
        s.destroy();
        r(true);
      });
      s.on("error", () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Spawns a Node helper; each stdout line that is JSON goes to `onLine`. */
function spawnNode(argv: string[], onLine?: (o: Record<string, unknown>) => void): ChildProcess {
  const child = spawn(process.execPath, argv, {
    stdio: ["pipe", "pipe", "ignore"],
    env: { ...process.env, X0T_LOG_LEVEL: "error" },
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  if (onLine)
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      try {
        onLine(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not an event line
      }
    });
  return child;
}

interface Relay {
  name: string;
  keyFile: string;
  port: number;
  shimPort: number;
  exit: boolean;
  region: string;
  child?: ChildProcess;
}

const REGIONS = ["DE", "FR", "NL", "SE", "US", "JP"];

async function startRelay(r: Relay, relayDir: string): Promise<void> {
  // The relay as `x0t node start` runs it, in bench/chaos-relay.ts, which can also turn hostile.
  const config = join(state, `${r.name}.node.json`);
  writeFileSync(
    config,
    JSON.stringify({
      role: r.exit ? "exit" : "relay",
      relay: {
        listen: `127.0.0.1:${r.port}`,
        keys: r.keyFile,
        name: r.name,
        region: r.region,
        // Relays EXTEND only to the relays these descriptors name (the shims' ports).
        mesh: { directory: relayDir },
      },
      ...(r.exit ? { exit: { allowLoopbackTargets: true } } : {}),
    }),
  );
  r.child = spawnNode([join(root, "bench/chaos-relay.ts"), config]);
  await waitForPort(r.port, 120_000); // a loaded machine starts 12 Node processes slowly
}

type EntryEvent =
  | { ev: "built"; t: number; id: string; role: "active" | "standby"; cls: string; path: string[] }
  | { ev: "closed"; t: number; id: string; path: string[]; reason: number }
  | { ev: "suspected"; t: number; relay: string; why?: string; ms?: number }
  | { ev: "decision"; t: number; action: string; circuit?: string };
type TrafficEvent =
  | { ev: "conn"; start: number; end: number; ok: boolean; cls: string }
  | { ev: "dl"; start: number; end: number; ok: boolean; cls: string };

interface FaultRecord {
  kind: Kind;
  victim: string;
  t0: number;
  window: number;
  /** Crash: when the killed process was gone (its exit seen), ms after t0. */
  goneMs?: number;
}

const pct = (xs: number[], p: number): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)] as number;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const { mode, why } = probeNamespaces();
  say(`chaos: mode ${mode} (${why})`);
  await initCrypto();
  const relayDir = join(state, "relays");
  mkdirSync(relayDir);
  const relays: Relay[] = [];
  for (let i = 1; i <= RELAYS; i++) {
    const r: Relay = {
      name: `r${i}`,
      keyFile: join(state, `r${i}.key`),
      port: await freePort(),
      shimPort: await freePort(),
      exit: i % 3 === 0,
      region: REGIONS[(i - 1) % REGIONS.length] as string,
    };
    const { keys } = loadOrCreateKeys(r.keyFile);
    // The descriptor names the shim: every link to the relay crosses it.
    const d = descriptorOf({
      name: r.name,
      host: "127.0.0.1",
      port: r.shimPort,
      exit: r.exit,
      region: r.region,
      keys: publicKeysOf(keys),
    });
    writeFileSync(join(relayDir, `${r.name}.json`), JSON.stringify(d));
    relays.push(r);
  }
  const shim = spawnNode([
    join(root, "bench/chaos-shim.ts"),
    JSON.stringify(relays.map((r) => ({ name: r.name, listen: r.shimPort, target: r.port }))),
  ]);
  const impair = (name: string, imp: { delayMs?: number; lossRate?: number; stallMs?: number }) =>
    shim.stdin?.write(JSON.stringify({ name, ...imp }) + "\n");
  const started = Date.now();
  await Promise.all(relays.map((r) => startRelay(r, relayDir)));
  for (const r of relays) await waitForPort(r.shimPort, 10_000);
  say(`chaos: ${RELAYS} relays up in ${Date.now() - started} ms (${relays.filter((r) => r.exit).length} exits)`);

  const entryEvents: EntryEvent[] = [];
  /** Every circuit the entry built: its class, path, and when it carried traffic (attribution). */
  const history = new Map<string, { cls: string; path: string[]; from?: number; until?: number }>();
  /** Circuits open at the entry that carry traffic (standbys do not, until promoted). */
  const open = new Map<string, { path: string[]; standby: boolean }>();
  const socksPort = await freePort();
  const entryProcess = spawnNode(
    [join(root, "bench/chaos-entry.ts"), relayDir, String(socksPort), join(state, "entry-mesh.sqlite")],
    (o) => {
      const e = o as unknown as EntryEvent;
      if (e.ev === "built") {
        open.set(e.id, { path: e.path, standby: e.role === "standby" });
        history.set(e.id, { cls: e.cls, path: e.path, ...(e.role === "standby" ? {} : { from: e.t }) });
      }
      if (e.ev === "closed") {
        open.delete(e.id);
        const h = history.get(e.id);
        if (h) h.until = e.t;
      }
      if (e.ev === "decision" && e.action === "promote-standby" && e.circuit) {
        const c = open.get(e.circuit);
        if (c) c.standby = false;
        const h = history.get(e.circuit);
        if (h && h.from === undefined) h.from = e.t;
      }
      entryEvents.push(e);
    },
  );
  await waitForPort(socksPort, 30_000);

  const traffic: TrafficEvent[] = [];
  const driver = spawnNode(
    [
      join(root, "bench/chaos-traffic.ts"),
      JSON.stringify({
        socksPort,
        rate: RATE,
        classes: CLASSES,
        timeoutMs: CONN_TIMEOUT_MS,
        downloads: DOWNLOADS,
        seconds: 20,
        kibPerSecond: 256,
      }),
    ],
    (o) => {
      if (o.ev === "conn" || o.ev === "dl") traffic.push(o as unknown as TrafficEvent);
    },
  );
  // Warm up: wait for connections to succeed, then let circuits settle.
  for (let i = 0; i < 300 && !traffic.some((e) => e.ev === "conn" && e.ok); i++) await sleep(100);
  if (!traffic.some((e) => e.ev === "conn" && e.ok))
    throw new Error("no connection succeeded through the entry in 30 s");
  await sleep(3_000);

  const faults: FaultRecord[] = [];
  const entryCpuAtStart = cpuSeconds(entryProcess.pid);
  const faultsStarted = Date.now();
  for (const kind of kinds) {
    for (let i = 0; i < FAULTS; i++) {
      // A relay that corrupts or drops what it passes on must be one that passes cells on: not an exit.
      const passesOn = kind === "corrupt" || kind === "drop";
      const inUse = [
        ...new Set(
          [...open.values()]
            .filter((c) => !c.standby)
            .map((c) => (passesOn ? c.path.slice(0, -1) : c.path))
            .flat(),
        ),
      ];
      const pool = inUse.length > 0 ? inUse : relays.filter((r) => !passesOn || !r.exit).map((r) => r.name);
      const pick = pool[Math.floor(Math.random() * pool.length)];
      const victim = relays.find((r) => r.name === pick);
      if (!victim) throw new Error(`no relay named ${JSON.stringify(pick)} (pool ${JSON.stringify(pool)})`);
      const window = WINDOW_MS[kind];
      const t0 = Date.now();
      const record: FaultRecord = { kind, victim: victim.name, t0, window };
      faults.push(record);
      if (kind === "crash") {
        // The kernel frees the process's memory before it closes its sockets: nobody can see a
        // crash before the process is gone, so the harness notes when that was.
        victim.child?.once("exit", () => (record.goneMs = Date.now() - t0));
        victim.child?.kill("SIGKILL");
      } else if (kind === "freeze") victim.child?.kill("SIGSTOP");
      else if (kind === "latency") impair(victim.name, { delayMs: LATENCY_MS });
      else if (kind === "loss") impair(victim.name, LOSS);
      else victim.child?.stdin?.write(`${kind}\n`); // corrupt or drop the cells it passes on
      await sleep(window);
      if (kind === "crash") await startRelay(victim, relayDir);
      else if (kind === "freeze") victim.child?.kill("SIGCONT");
      else if (kind === "latency" || kind === "loss") impair(victim.name, {});
      else victim.child?.stdin?.write("off\n");
      await sleep(SETTLE_MS);
      say(`chaos: ${kind} ${i + 1}/${FAULTS} on ${victim.name}`);
    }
  }
  await sleep(CONN_TIMEOUT_MS + 500); // the last window's connections finish or time out
  // What the entry (SOCKS, circuits, the mesh loop) cost: CPU seconds per second of the fault phase.
  const entryCpu = (cpuSeconds(entryProcess.pid) - entryCpuAtStart) / ((Date.now() - faultsStarted) / 1000);
  driver.kill("SIGTERM");
  if (args.trace) {
    // Everything the entry and the traffic reported, and the faults, in time order (JSON lines).
    const lines = [
      ...faults.map((f) => ({ ev: "fault", t: f.t0, ...f })),
      ...entryEvents,
      ...traffic.map((e) => ({ ...e, t: e.start })),
    ].sort((a, b) => a.t - b.t);
    writeFileSync(args.trace, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    say(`chaos: trace written to ${args.trace}`);
  }

  const report: Record<string, unknown> = {};
  const rows: string[] = [];
  for (const kind of kinds) {
    const mine = faults.filter((f) => f.kind === kind);
    const mttd: number[] = [];
    const mttr: number[] = [];
    const connMs: number[] = [];
    const goneMs = mine.flatMap((f) => (f.goneMs === undefined ? [] : [f.goneMs]));
    let conns = 0;
    let ok = 0;
    let running = 0;
    let broken = 0;
    /** Broken downloads whose class had a circuit through the faulted relay at the fault. */
    let brokenThrough = 0;
    /** Relays other than the faulted one that the entry suspected during the fault (beyond a provisional suspicion). */
    let wrongSuspects = 0;
    for (const f of mine) {
      const end = f.t0 + f.window + SETTLE_MS;
      const detected = entryEvents.find(
        (e) =>
          e.t >= f.t0 &&
          e.t < f.t0 + f.window &&
          ((e.ev === "suspected" && e.relay === f.victim) || (e.ev === "closed" && e.path.includes(f.victim))),
      );
      if (detected) mttd.push(detected.t - f.t0);
      const wrong = new Set(
        entryEvents.flatMap((e) =>
          e.ev === "suspected" &&
          e.t >= f.t0 &&
          e.t < f.t0 + f.window &&
          e.relay !== f.victim &&
          (e.ms === undefined || e.ms > PROVISIONAL_MS)
            ? [e.relay]
            : [],
        ),
      );
      wrongSuspects += wrong.size;
      const inWindow = traffic.filter((e) => e.ev === "conn" && e.start >= f.t0 && e.start < f.t0 + f.window);
      conns += inWindow.length;
      ok += inWindow.filter((e) => e.ok).length;
      for (const e of inWindow) if (e.ok) connMs.push(e.end - e.start);
      const hurt = inWindow.filter((e) => !e.ok || e.end - e.start > HURT_MS);
      const lastHurt = Math.max(f.t0, ...hurt.map((e) => e.end));
      const healedAfter = traffic.some(
        (e) => e.ev === "conn" && e.ok && e.end - e.start <= HURT_MS && e.start >= lastHurt && e.start < end,
      );
      if (hurt.length === 0) mttr.push(0);
      else if (healedAfter) mttr.push(lastHurt - f.t0);
      const dls = traffic.filter((e) => e.ev === "dl");
      const runningNow = dls.filter((e) => e.start < f.t0 && e.end > f.t0).length;
      const brokenDls = dls.filter((e) => !e.ok && e.start < f.t0 && e.end > f.t0 && e.end < end);
      const brokenNow = brokenDls.length;
      // A download's class is its SOCKS username ("dl0") as the entry keys it ("3:dl0x").
      const through = (cls: string) =>
        [...history.values()].some(
          (h) =>
            h.cls === `${cls.length}:${cls}x` &&
            h.from !== undefined &&
            h.from <= f.t0 &&
            (h.until === undefined || h.until > f.t0) &&
            h.path.includes(f.victim),
        );
      brokenThrough += brokenDls.filter((e) => through(e.cls)).length;
      running += runningNow;
      broken += brokenNow;
      // One line per fault, so that a tail can be explained.
      const how = !detected ? "not detected" : detected.ev === "suspected" ? "suspected" : `circuit ${detected.ev}`;
      say(
        `chaos: ${kind} on ${f.victim}: ${how}${detected ? ` after ${detected.t - f.t0} ms` : ""}` +
          `${f.goneMs === undefined ? "" : ` (process gone after ${f.goneMs} ms)`}; ` +
          `${inWindow.length - inWindow.filter((e) => e.ok).length}/${inWindow.length} connections failed, ` +
          `${hurt.length} hurt; downloads broken ${brokenNow}/${runningNow}` +
          `${wrong.size > 0 ? `; others suspected: ${[...wrong].join(", ")}` : ""}`,
      );
    }
    const r2 = (x: number | null) => (x === null ? null : Math.round(x));
    report[kind] = {
      n: mine.length,
      detected: mttd.length,
      recovered: mttr.length,
      mttd_ms: { p50: r2(pct(mttd, 0.5)), p99: r2(pct(mttd, 0.99)) },
      mttr_ms: { p50: r2(pct(mttr, 0.5)), p99: r2(pct(mttr, 0.99)) },
      conn_ms: { p50: r2(pct(connMs, 0.5)), p99: r2(pct(connMs, 0.99)) },
      ...(goneMs.length > 0 ? { process_gone_ms: { p50: r2(pct(goneMs, 0.5)), p99: r2(pct(goneMs, 0.99)) } } : {}),
      new_conn_success: conns === 0 ? null : Number((ok / conns).toFixed(4)),
      new_conns: conns,
      downloads_broken: running === 0 ? null : Number((broken / running).toFixed(3)),
      downloads_running: running,
      downloads_broken_through_faulted_relay: brokenThrough,
      wrong_suspects: wrongSuspects,
    };
    const fmt = (x: number | null) => (x === null ? "—" : String(Math.round(x)));
    rows.push(
      `| ${kind} | ${mine.length} | ${mttd.length}/${mine.length} | ${fmt(pct(mttd, 0.5))} / ${fmt(pct(mttd, 0.99))} | ` +
        `${mttr.length}/${mine.length} | ${fmt(pct(mttr, 0.5))} / ${fmt(pct(mttr, 0.99))} | ` +
        `${conns === 0 ? "—" : ((100 * ok) / conns).toFixed(2)}% of ${conns} | ` +
        `${fmt(pct(connMs, 0.5))} / ${fmt(pct(connMs, 0.99))} | ` +
        `${running === 0 ? "—" : `${broken}/${running} (${brokenThrough} through it)`} | ${wrongSuspects} |`,
    );
  }
  console.log(
    `\nchaos: mode ${mode}; ${RELAYS} relays, 3-hop circuits, ${RATE} new connections/s over ${CLASSES} ` +
      `SOCKS usernames, ${DOWNLOADS} long downloads; faults ${kinds.join(", ")} x ${FAULTS}\n`,
  );
  console.log(
    "| fault | n | detected | MTTD p50 / p99 ms | recovered | MTTR p50 / p99 ms | new connections ok | connection ms p50 / p99 | downloads broken | others suspected |",
  );
  console.log("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |");
  for (const row of rows) console.log(row);
  for (const kind of kinds) {
    const gone = (report[kind] as { process_gone_ms?: { p50: number; p99: number } }).process_gone_ms;
    if (gone)
      console.log(
        `\n${kind}: the harness saw the killed process exit after ${gone.p50} / ${gone.p99} ms (p50 / p99): ` +
          "its sockets close only once the kernel has freed its memory, so no peer can see a crash sooner",
      );
  }
  console.log(`\nentry CPU: ${(100 * entryCpu).toFixed(1)}% of a core over the fault phase`);
  if (args.json)
    console.log(
      JSON.stringify({ mode, why, relays: RELAYS, entry_cpu_share: Number(entryCpu.toFixed(3)), faults: report }),
    );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`chaos: ${(error as Error).message}`);
    process.exit(1);
  },
);

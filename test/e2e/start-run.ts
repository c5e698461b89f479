/**
 * Runs `npm start`'s script the way npm runs it (package.json "start:system", in its own process
 * group, on loopback ports the test picks) and reads what it prints and records: its output, the
 * process table, the pid file. Every wait is bounded and fails with the output so far.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { canBind } from "../../scripts/start/ports.ts";

const hardhatCli = join(dirname(createRequire(import.meta.url).resolve("hardhat")), "cli.js");
/** "hardhat run --no-compile scripts/start.ts" → the arguments after "hardhat". */
const startArgs = (JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> }).scripts[
  "start:system"
]!.split(" ").slice(1);

export interface StartRun {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the output once `pattern` is in it; rejects if the run exits first or time runs out. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** SIGKILL to the run's own process group (npm start and nothing else: its nodes have their own). */
  killGroup(signal?: NodeJS.Signals): void;
}

export function runStart(env: Record<string, string>): StartRun {
  // npm start's own variables from the test's environment would change what it prints.
  const inherited = { ...process.env };
  delete inherited.X0T_LAUNCHED_AT;
  delete inherited.X0T_VERBOSE;
  const child = spawn(process.execPath, [hardhatCli, ...startArgs], {
    env: { ...inherited, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    output: () => output,
    exited,
    async waitFor(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (pattern.test(output)) return output;
        if (done) throw new Error(`npm start exited before ${pattern}; output:\n${output}`);
        if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    killGroup(signal = "SIGKILL") {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // gone already
      }
    },
  };
}

export interface TableRow {
  name: string;
  role: string;
  region: string;
  pid: number;
  listen: string;
  metrics: string;
  log: string;
}

/** The process table npm start prints once ready. */
export function processRows(output: string): TableRow[] {
  const rows: TableRow[] = [];
  const re = /^ {2}(\S+)\s+(chain|relay|exit|entry|web)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)$/gm;
  for (const m of output.matchAll(re))
    rows.push({
      name: m[1]!,
      role: m[2]!,
      region: m[3]!,
      pid: Number(m[4]),
      listen: m[5]!,
      metrics: m[6]!,
      log: m[7]!,
    });
  return rows;
}

export interface PidFileParts {
  start: { pid: number };
  parts: { name: string; role: string; region?: string; pid: number; log: string }[];
}

export function readPidFile(file: string): PidFileParts | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as PidFileParts;
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `count` consecutive loopback ports, all free now, below the kernel's ephemeral range (32768 and
 * up here), so that no outgoing connection of another program takes one of them meanwhile.
 */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (12_000 - count));
    let free = true;
    for (let i = 0; i < count && free; i++) free = await canBind(base + i);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports on loopback`);
}

/** Polls `check` every 250 ms for at most `timeoutMs`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The child processes of `npm start`: each in its own process group (so that stopping one stops
 * whatever it spawned, and a terminal's Ctrl-C reaches only `npm start`, which then stops them in
 * order), its stdout and stderr written straight to `<logs>/<name>.log` (the terminal stays clean,
 * and a child never depends on this process being alive to write), every pid recorded in a pid
 * file. After a crash of `npm start` itself (SIGKILL, a closed terminal), the next start reads
 * that file and stops what the dead run left behind, checking each pid's command line first so
 * that it never signals a process that merely reused a pid.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from "node:fs";
import { relative } from "node:path";
import { commandOf } from "./ports.ts";

export type Role = "chain" | "relay" | "exit" | "entry" | "web";

/** What the process list shows about a part. */
export interface PartInfo {
  name: string;
  role: Role;
  region?: string;
  /** What it listens on, host:port. */
  listen?: string;
  /** Its Prometheus endpoint. */
  metrics?: string;
  /** Its log file (absolute). */
  log: string;
}

export interface Part extends PartInfo {
  pid: number;
  child: ChildProcess;
  /** The command line it was started with (arguments joined by spaces). */
  command: string;
}

/** A process is (pid, start time): a pid alone may have been reused since it was written down. */
interface Recorded {
  pid: number;
  /** /proc/<pid>/stat's starttime (clock ticks since boot). */
  started: string;
  command: string;
}

interface PidFile {
  start: Recorded;
  parts: (PartInfo & Recorded)[];
}

/** The start time of `pid` (field 22 of /proc/<pid>/stat), or undefined when it is gone. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Whether `r` is still the very process that was recorded. */
function same(r: Recorded): boolean {
  return alive(r.pid) && startTimeOf(r.pid) === r.started;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether any process is left in process group `pgid`. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM to the group, then SIGKILL if anything of it is left after `graceMs`. */
async function stopGroup(pgid: number, graceMs: number): Promise<void> {
  signalGroup(pgid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(50);
  if (groupAlive(pgid)) {
    signalGroup(pgid, "SIGKILL");
    while (groupAlive(pgid) && Date.now() < deadline + 2_000) await sleep(50);
  }
}

/** The last `lines` lines of a log file (at most its last 64 KiB), JSON log lines made readable. */
export function tailLog(file: string, lines = 12): string[] {
  if (!existsSync(file)) return [];
  const size = statSync(file).size;
  const length = Math.min(size, 64 * 1024);
  const buffer = Buffer.alloc(length);
  const fd = openSync(file, "r");
  try {
    readSync(fd, buffer, 0, length, size - length);
  } finally {
    closeSync(fd);
  }
  return buffer
    .toString("utf8")
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l !== "")
    .slice(-lines)
    .map(readableLogLine);
}

/** `{"level":"error","msg":"usage","error":"…"}` → `error usage: error=…`; other lines as they are. */
export function readableLogLine(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const fields = JSON.parse(line) as Record<string, unknown>;
    const { level, msg } = fields;
    for (const k of ["time", "level", "msg"]) delete fields[k];
    const rest = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    return `${String(level ?? "")} ${String(msg ?? "")}${rest ? `: ${rest}` : ""}`;
  } catch {
    return line;
  }
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Supervisor {
  readonly #parts: Part[] = [];
  readonly #started = new Map<number, string>();
  readonly #pidFile: string;
  readonly #onExit: (part: Part, exit: ExitInfo) => void;
  #stopping = false;
  #stopped = false;

  /**
   * @param pidFile where every child's pid and start time are kept (and the start process's own)
   * @param onExit called when a child exits while the supervisor is not stopping
   */
  constructor(pidFile: string, onExit: (part: Part, exit: ExitInfo) => void) {
    this.#pidFile = pidFile;
    this.#onExit = onExit;
    this.#write();
    // Whatever ends this process (an uncaught error included), its children do not outlive it.
    process.on("exit", () => this.killAll());
  }

  get parts(): readonly Part[] {
    return this.#parts;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** The parts whose process is still running. */
  get running(): Part[] {
    return this.#parts.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
  }

  /** Starts `command args` as part `info`, its output appended to `info.log`. */
  spawn(info: PartInfo, command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    // A step still running when a stop began must not start what the stop would miss.
    if (this.#stopping) throw new Error(`${info.name}: not started, everything is stopping`);
    const fd = openSync(info.log, "a");
    let child: ChildProcess;
    try {
      child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    if (child.pid === undefined) throw new Error(`${info.name}: could not start ${command}`);
    const part: Part = { ...info, pid: child.pid, child, command: [command, ...args].join(" ") };
    // spawn returns after exec: this is the child's own start time.
    this.#started.set(child.pid, startTimeOf(child.pid) ?? "");
    this.#parts.push(part);
    this.#write();
    child.once("exit", (code, signal) => {
      if (!this.#stopping) this.#onExit(part, { code, signal });
    });
    return part;
  }

  /**
   * Stops every part, entry first and chain last (each group: SIGTERM, SIGKILL after `graceMs`),
   * and removes the pid file. Idempotent.
   */
  async stopAll(graceMs = 5_000): Promise<void> {
    this.#stopping = true;
    const order: Role[] = ["entry", "web", "relay", "exit", "chain"];
    for (const role of order) {
      const parts = this.#parts.filter((p) => p.role === role && Supervisor.#groupIsOurs(p));
      await Promise.all(parts.map((p) => stopGroup(p.pid, graceMs)));
    }
    this.#remove();
    this.#stopped = true;
  }

  /** SIGKILL to every group at once (a second Ctrl-C, or this process exiting). */
  killAll(): void {
    if (this.#stopped) return; // every group is gone, and a group id may be reused from now on
    this.#stopping = true;
    for (const p of this.#parts) if (Supervisor.#groupIsOurs(p)) signalGroup(p.pid, "SIGKILL");
  }

  /**
   * Whether `p`'s process group is still ours to signal: its leader runs (not yet reaped, so its pid
   * cannot have been reused), or the leader is gone and what is left of its group is what it spawned
   * (a pid in use as a group id is never handed out again, so a live group of that id is the old one).
   */
  static #groupIsOurs(p: Part): boolean {
    if (p.child.exitCode === null && p.child.signalCode === null) return true;
    return !alive(p.pid) && groupAlive(p.pid);
  }

  #write(): void {
    const file: PidFile = {
      start: { pid: process.pid, started: startTimeOf(process.pid) ?? "", command: commandOf(process.pid) ?? "" },
      parts: this.#parts.map(({ child: _child, ...rest }) => ({ ...rest, started: this.#started.get(rest.pid) ?? "" })),
    };
    const tmp = `${this.#pidFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(file, null, 2) + "\n");
    renameSync(tmp, this.#pidFile);
  }

  #remove(): void {
    try {
      writeFileSync(this.#pidFile, "");
    } catch {
      // the state folder is gone
    }
  }
}

export interface Leftovers {
  /** Another `npm start` is running on this state folder: never touched. */
  running?: { pid: number; command: string };
  /** Processes of a dead run that were stopped. */
  stopped: { name: string; pid: number }[];
}

/**
 * Reads a previous run's pid file: reports (and leaves alone) a run that is still alive, else
 * stops each recorded process group that is still there. A leader is signalled only when its pid
 * and start time are the ones recorded; a group whose leader is gone cannot have been reused
 * (Linux does not hand out a pid still in use as a group id), so what is left in it was ours.
 */
export async function stopLeftovers(pidFile: string): Promise<Leftovers> {
  const result: Leftovers = { stopped: [] };
  let recorded: PidFile;
  try {
    recorded = JSON.parse(readFileSync(pidFile, "utf8")) as PidFile;
  } catch {
    return result; // no file, or an empty one: the last run stopped cleanly
  }
  const start = recorded.start;
  if (start && start.pid !== process.pid && same(start)) {
    result.running = start;
    return result;
  }
  await Promise.all(
    (recorded.parts ?? []).map(async (p) => {
      const leaderOurs = same(p);
      const remnants = !alive(p.pid) && groupAlive(p.pid);
      if (!leaderOurs && !remnants) return;
      await stopGroup(p.pid, 3_000);
      result.stopped.push({ name: p.name, pid: p.pid });
    }),
  );
  return result;
}

/** `file` relative to `base` when it is inside it (for the terminal), else absolute. */
export function shown(file: string, base = process.cwd()): string {
  const r = relative(base, file);
  return r.startsWith("..") ? file : r;
}

/**
 * X0T_VERBOSE: follows `file` as it grows and hands each new line, prefixed with `name`, to
 * `print` (the children write to their files either way; this only reads them).
 */
export function mirrorLog(file: string, name: string, print: (line: string) => void): void {
  let offset = 0;
  let partial = "";
  const timer = setInterval(() => {
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      return;
    }
    if (size <= offset) return;
    const buffer = Buffer.alloc(Math.min(size - offset, 1 << 20));
    const fd = openSync(file, "r");
    try {
      offset += readSync(fd, buffer, 0, buffer.length, offset);
    } finally {
      closeSync(fd);
    }
    const lines = (partial + buffer.toString("utf8")).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.trim() !== "") print(`${name} | ${line}`);
  }, 200);
  timer.unref();
}

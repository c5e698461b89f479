/**
 * What `npm start` prints: numbered steps, each with how long it took; on a terminal, a line that
 * says what it is waiting for right now (rewritten in place, gone when the step ends); the table
 * of processes at the end. Every line also goes to the run's own log (`start.log`).
 */
import { appendFileSync } from "node:fs";
import { type Part, shown } from "./supervisor.ts";

export class StepError extends Error {
  override name = "StepError";
  /** The part that failed: "relay-2", "chain", "SOCKS5 entry"… */
  readonly part: string;
  /** Lines that say why (the end of its log, say). */
  readonly details: string[];
  constructor(part: string, message: string, details: string[] = [], options?: ErrorOptions) {
    super(message, options);
    this.part = part;
    this.details = details;
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
// Bound now: compiling swaps process.stdout.write for a while (start/protocol.ts), and what this
// prints (a Ctrl-C meanwhile, say) must still reach the terminal.
const out = process.stdout.write.bind(process.stdout);
const err = process.stderr.write.bind(process.stderr);

export class Progress {
  readonly #total: number;
  readonly #tty: boolean;
  #log: string | undefined;
  /** Lines said before there was a log file to keep them in. */
  #early: string[] = [];
  #n = 0;
  #status = "";
  #quiet = false;

  constructor(total: number, options: { tty?: boolean } = {}) {
    this.#total = total;
    this.#tty = options.tty ?? process.stdout.isTTY === true;
  }

  /** From now on every line is also appended to `file` (with the lines said so far). */
  logTo(file: string): void {
    this.#log = file;
    for (const line of this.#early.splice(0)) this.#keep(line);
  }

  /** Prints a line (clearing the status line first on a terminal). */
  line(text = ""): void {
    if (this.#quiet) return;
    this.#clear();
    out(`${text}\n`);
    this.#redraw();
    this.#keep(text);
  }

  /** Stops printing steps (the run is stopping: whatever the steps still in flight do is moot). */
  silence(): void {
    this.#clear();
    this.#quiet = true;
  }

  /** Writes to the terminal even when silenced (the reason the run stops, the stop itself). */
  say(text: string): void {
    this.#clear();
    err(`${text}\n`);
    this.#keep(text);
  }

  /**
   * Runs one numbered step: `doing` shows on a terminal while it runs; when `run` resolves, the
   * step's line is `done(result)` with the time it took.
   */
  async step<T>(doing: string, run: () => Promise<T>, done: (result: T) => string): Promise<T> {
    const n = ++this.#n;
    const started = performance.now();
    this.status(`${this.#label(n)} ${doing}...`);
    let result: T;
    try {
      result = await run();
    } catch (error) {
      if (error instanceof StepError) throw error;
      // Anything else failed in the step itself (a transaction, the deployment…): name the step.
      const { message, details } = explain(error);
      throw new StepError(`step ${n}/${this.#total} (${doing})`, message, details, { cause: error });
    }
    this.status("");
    this.line(`${this.#label(n)} ${done(result)}  (${seconds(performance.now() - started)})`);
    return result;
  }

  /** A line under the current step, with its own time (a relay that came up, say). */
  sub(text: string, sinceMs: number): void {
    this.line(`${" ".repeat(this.#label(this.#n).length)} ${text}  (${seconds(performance.now() - sinceMs)})`);
  }

  /** What is being waited for, shown on a terminal only and rewritten in place. */
  status(text: string): void {
    if (!this.#tty || this.#quiet) return;
    this.#clear();
    this.#status = text.length > 118 ? `${text.slice(0, 115)}...` : text;
    this.#redraw();
  }

  #label(n: number): string {
    return `[${String(n).padStart(String(this.#total).length)}/${this.#total}]`;
  }

  #clear(): void {
    if (this.#tty && this.#status) out("\r\x1b[2K");
  }

  #redraw(): void {
    if (this.#tty && this.#status) out(this.#status);
  }

  #keep(text: string): void {
    if (!this.#log) return void this.#early.push(text);
    try {
      appendFileSync(this.#log, `${text}\n`);
    } catch {
      // the state folder went away: the terminal has it
    }
  }
}

export { seconds };

/**
 * One line for an error, and a few that explain it: viem's `shortMessage` and the custom error it
 * decoded (`Error: EndpointInUse(…)` and its values), else the first line of the message and of
 * its cause. The rest of a viem message (call arguments, docs links) stays out of the terminal.
 */
export function explain(error: unknown): { message: string; details: string[] } {
  if (!(error instanceof Error)) return { message: String(error), details: [] };
  const short = (error as { shortMessage?: string }).shortMessage;
  const lines = error.message.split("\n").map((l) => l.trim());
  const details: string[] = [];
  const decoded = lines.findIndex((l) => l.startsWith("Error: "));
  if (decoded >= 0) details.push(`${lines[decoded]} ${lines[decoded + 1] ?? ""}`.trim());
  const cause = error.cause instanceof Error ? error.cause.message.split("\n")[0] : undefined;
  if (cause && cause !== (short ?? lines[0]) && details.length === 0) details.push(`cause: ${cause}`);
  return { message: short ?? lines[0] ?? error.name, details };
}

/** The process list: name, role, region, pid, what it listens on, metrics, log. */
export function processTable(parts: readonly Part[], extra: string[][] = []): string[] {
  const header = ["name", "role", "region", "pid", "listens on", "metrics", "log"];
  const rows = [
    header,
    ...parts.map((p) => [
      p.name,
      p.role,
      p.region ?? "-",
      String(p.pid),
      p.listen ?? "-",
      p.metrics ?? "-",
      shown(p.log),
    ]),
    ...extra,
  ];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

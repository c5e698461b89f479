/**
 * Bounded waits for the parts of `npm start`: a port that accepts, an HTTP endpoint that answers,
 * a file that appears. A part that exits, or a check that never passes, becomes a StepError that
 * names the part and carries the end of its log.
 */
import { connect } from "node:net";
import { StepError } from "./progress.ts";
import { type ExitInfo, type Part, shown, tailLog } from "./supervisor.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function describeExit(exit: ExitInfo): string {
  return exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** The end of a part's log, as StepError details. */
export function logDetails(log: string, lines = 12): string[] {
  const tail = tailLog(log, lines);
  return tail.length ? [`last lines of ${shown(log)}:`, ...tail.map((l) => `  ${l}`)] : [`(${shown(log)} is empty)`];
}

export function exitedError(part: Part, exit: ExitInfo, when: string): StepError {
  return new StepError(part.name, `${describeExit(exit)} ${when}`, logDetails(part.log));
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(1_000, () => (socket.destroy(), resolve(false)));
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** Whether `url` answers 2xx (and its body holds `contains`). */
export async function answers(url: string, contains?: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return response.ok && (contains === undefined || (await response.text()).includes(contains));
  } catch {
    return false;
  }
}

export interface Check {
  /** What is wrong while it fails (a function: it may say what the last attempt saw). */
  what: string | (() => string);
  ok: () => Promise<boolean>;
}

/** Waits until every check passes, in order, within `timeoutMs` in all; or a StepError. */
export async function waitReady(part: Part, checks: Check[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const check of checks) {
    for (;;) {
      const { exitCode, signalCode } = part.child;
      if (exitCode !== null || signalCode !== null)
        throw exitedError(part, { code: exitCode, signal: signalCode }, "before it was ready");
      if (await check.ok()) break;
      if (Date.now() > deadline) {
        const what = typeof check.what === "function" ? check.what() : check.what;
        throw new StepError(part.name, `not ready within ${timeoutMs / 1000} s: ${what}`, logDetails(part.log));
      }
      await sleep(150);
    }
  }
}

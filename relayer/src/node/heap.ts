/**
 * V8 heap settings a node process chooses for itself (docs/protocol.md, "GC settings").
 *
 * A relay (or exit) keeps V8's young generation at its initial size, 1 MiB semi-spaces. Cells
 * pass through a relay within a turn or two, so a small young generation is collected often and
 * cheaply; the default one grows to 16 MiB semi-spaces, and its scavenges took 10–20 ms here,
 * followed by full mark-compacts forced by the external memory of many small Buffers. Measured in
 * pairs (`npm run bench -- --gc-ab`, relays held against relays left to grow): the middle relay's
 * CPU per GB 0.61x, MB/s of a 3-hop download 1.64x; relays' scavenges now take 0.3–2.5 ms.
 *
 * The entry lets its young generation grow as V8 does by default. It holds up to a stream window
 * (~1 MiB) per stream between its SOCKS5 socket and the circuit, more than a 1 MiB young
 * generation: with one its CPU per GB was 0.53–1.32x round by round, 1.49x with 2 MiB, 1.11x
 * with 4 MiB. Any other command (bootstrap, keys, account) lets it grow too.
 *
 * `--max-semi-space-size` is read only when V8 starts (a node re-executing itself with it would
 * pay its start-up twice). `--semi-space-growth-factor=1`, set at run time, holds the young
 * generation at its size, so it must be set before modules load (they grow it to 16 MiB):
 * relayer/src/cli.ts calls holdYoungGeneration() first and loads the commands after it.
 * An operator's own young-generation flag (command line or NODE_OPTIONS) is left alone.
 */
import { setFlagsFromString } from "node:v8";

const HOLD = "--semi-space-growth-factor=1";
/** V8's default growth factor (`node --v8-options`). */
const DEFAULT_GROWTH = "--semi-space-growth-factor=2";

/** Whether the operator sized the young generation themselves. */
function operatorChose(): boolean {
  const given = [
    ...process.execArgv,
    ...(process.env.NODE_OPTIONS ?? "").split(/\s+/).map((f) => f.replace(/^["']/, "")),
  ];
  return given.some((flag) => /^--((max|min)[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)/.test(flag));
}

let held = false;

/** Holds the young generation at its initial size: call before loading anything large. */
export function holdYoungGeneration(): void {
  if (held || operatorChose()) return;
  setFlagsFromString(HOLD);
  held = true;
}

/** Lets the young generation grow again as V8 does by default (growth factor 2). */
export function releaseYoungGeneration(): void {
  if (!held) return;
  setFlagsFromString(DEFAULT_GROWTH);
  held = false;
}

/**
 * The heap settings of a node of this role: a relay or exit keeps the young generation held; an
 * entry lets it grow as V8 does by default. Returns what the process runs with, for the log.
 */
export function heapForRole(role: "entry" | "relay" | "exit"): string {
  if (!held) return operatorChose() ? "operator's flags" : "grows as V8's default";
  if (role !== "entry") return HOLD;
  releaseYoungGeneration();
  return "grows as V8's default";
}

/**
 * Chaos harness helper: a relay exactly as `x0t node start --config <file>` runs it, plus the one
 * thing no config can ask for: a hostile mode, switched by a line on stdin, in which it corrupts or
 * drops the cells it passes on towards the exit (the cells it answers itself — beacons, EXTENDs to
 * it — are untouched, so it still looks alive to whoever probes it directly).
 *
 *   stdin: "corrupt" | "drop" | "off"   one per line
 *
 * argv: <node config file>.
 */
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { heapForRole, holdYoungGeneration } from "../relayer/src/node/heap.ts";

// As relayer/src/cli.ts: the young generation is held before the node's modules load.
holdYoungGeneration();
const { initCrypto } = await import("../relayer/src/crypto/keys.ts");
const { createLogger } = await import("../relayer/src/log.ts");
const { parseNodeConfig } = await import("../relayer/src/node/config.ts");
const { startNode } = await import("../relayer/src/node/run.ts");

const file = process.argv[2] as string;
let mode: "off" | "corrupt" | "drop" = "off";
createInterface({ input: process.stdin }).on("line", (line) => {
  const m = line.trim();
  if (m === "off" || m === "corrupt" || m === "drop") mode = m;
});

await initCrypto();
const log = createLogger({ level: "error" });
const config = parseNodeConfig(JSON.parse(readFileSync(file, "utf8")), file);
heapForRole(config.role); // as `x0t node start` does
const node = await startNode(config, log, {
  tamperForward: (body) => {
    if (mode === "drop") return false;
    // One flipped bit past the onion layer's tag: the next hop's authentication fails.
    if (mode === "corrupt") body[body.length - 1]! ^= 1;
  },
});
process.on("SIGTERM", () => void node.close().finally(() => process.exit(0)));

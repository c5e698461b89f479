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
import { initCrypto } from "../relayer/src/crypto/keys.ts";
import { createLogger } from "../relayer/src/log.ts";
import { parseNodeConfig } from "../relayer/src/node/config.ts";
import { startNode } from "../relayer/src/node/run.ts";

const file = process.argv[2] as string;
let mode: "off" | "corrupt" | "drop" = "off";
createInterface({ input: process.stdin }).on("line", (line) => {
  const m = line.trim();
  if (m === "off" || m === "corrupt" || m === "drop") mode = m;
});

await initCrypto();
const log = createLogger({ level: "error" });
const node = await startNode(parseNodeConfig(JSON.parse(readFileSync(file, "utf8")), file), log, {
  tamperForward: (body) => {
    if (mode === "drop") return false;
    // One flipped bit past the onion layer's tag: the next hop's authentication fails.
    if (mode === "corrupt") body[body.length - 1]! ^= 1;
  },
});
process.on("SIGTERM", () => void node.close().finally(() => process.exit(0)));

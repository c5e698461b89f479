#!/usr/bin/env node
/**
 * x0t — the relayer's command line.
 *
 *   x0t relay --listen 127.0.0.1:9001 --keys relay.key [--exit] [--allow-loopback-targets]
 *             [--allow-private-targets]
 *             [--name r1] [--region DE] [--descriptor-out dir/r1.json] [--creates-per-second 200]
 *             [--metrics [host:]port]
 *             [--directory dir]                       EXTEND only to the relays these descriptors name
 *             [--bootstrap url]... --deployment d.json --signer-key k --operator 0x… [--trust 0xsigner[:0xoperator]]...
 *                                                     publish a signed descriptor, know relays from there
 *   x0t entry --socks 127.0.0.1:10809 --directory dir [--hops 3] [--knowledge mesh.sqlite] [--metrics [host:]port]
 *             [--diversity-prefix on|off] [--bootstrap url... --deployment d.json --trust 0xsigner...]
 *   x0t bootstrap --listen 127.0.0.1:7000 --deployment d.json [--peer url]...
 *             [--trust 0xsigner[:0xoperator]]...          signers vouched for offline (pin operators: docs/self-healing.md)
 *             [--registry [--rpc-url url] [--registry-checkpoint file]]
 *                                                     check descriptors against the deployment's RelayerRegistry
 *                                       a bootstrap node: keeps and hands out signed relay descriptors
 *                                       (at least one of --trust, --registry)
 *   x0t node start --config node.json   an entry, relay or exit from a config file (node/config.ts),
 *                                       paid or not; `x0t node schema` prints its JSON Schema
 *   x0t keys  --keys relay.key          prints the keysHash to register on-chain
 *   x0t treasury propose|sign|execute   council payouts from the treasury Safe (cli/treasury.ts)
 *   x0t buy|key|lock|stake|unbond|withdraw|claim|status   a user's and an operator's transactions
 *                                       (cli/account.ts; --json on each)
 *
 * Logs are JSON lines on stderr; X0T_LOG_LEVEL=debug|info|warn|error (default info).
 */
// Before anything else is loaded: V8 grows its young generation while modules load, and a
// relay's must stay small (node/heap.ts). The commands come in with a dynamic import after it.
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { holdYoungGeneration } from "./node/heap.ts";

holdYoungGeneration();
const commands = await import("./cli/main.ts");

export const main = commands.main;

// Run as a script: `node relayer/src/cli.ts`, or the `x0t` bin (a symbolic link to this file).
const invoked = process.argv[1];
if (invoked && import.meta.url === pathToFileURL(realpathSync(invoked)).href) {
  main(process.argv.slice(2)).then((code) => {
    if (code !== 0) process.exit(code);
  });
}

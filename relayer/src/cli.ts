#!/usr/bin/env node
/**
 * x0t — the relayer's command line.
 *
 *   x0t relay --listen 127.0.0.1:9001 --keys relay.key [--exit] [--allow-loopback-targets]
 *             [--allow-private-targets]
 *             [--name r1] [--region DE] [--descriptor-out dir/r1.json] [--creates-per-second 200]
 *             [--metrics [host:]port]
 *   x0t entry --socks 127.0.0.1:10809 --directory dir [--hops 3] [--metrics [host:]port]
 *   x0t node start --config node.json   an entry, relay or exit from a config file (node/config.ts),
 *                                       paid or not; `x0t node schema` prints its JSON Schema
 *   x0t keys  --keys relay.key          prints the keysHash to register on-chain
 *   x0t treasury propose|sign|execute   council payouts from the treasury Safe (cli/treasury.ts)
 *   x0t buy|key|lock|stake|unbond|withdraw|claim|status   a user's and an operator's transactions
 *                                       (cli/account.ts; --json on each)
 *
 * Logs are JSON lines on stderr; X0T_LOG_LEVEL=debug|info|warn|error (default info).
 */
import { parseArgs } from "node:util";
import { initCrypto } from "./crypto/keys.ts";
import { createLogger, parseLogLevel } from "./log.ts";
import type { Logger } from "./log.ts";
import { ConfigError, loadNodeConfig, nodeConfigJsonSchema, parseEndpoint, parseNodeConfig } from "./node/config.ts";
import { loadOrCreateKeys } from "./node/keyfile.ts";
import { startNode } from "./node/run.ts";
import { ACCOUNT_COMMANDS, runAccountCommand } from "./cli/account.ts";
import { runTreasuryCommand } from "./cli/treasury.ts";

export class UsageError extends Error {
  override name = "UsageError";
}

function onShutdown(log: Logger, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal });
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

async function relay(argv: string[], log: Logger): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      listen: { type: "string", default: "127.0.0.1:9001" },
      keys: { type: "string" },
      name: { type: "string" },
      region: { type: "string" },
      exit: { type: "boolean", default: false },
      "allow-private-targets": { type: "boolean", default: false },
      "allow-loopback-targets": { type: "boolean", default: false },
      "descriptor-out": { type: "string" },
      "advertise-host": { type: "string" },
      "creates-per-second": { type: "string" },
      metrics: { type: "string" },
    },
  });
  if (!values.keys) throw new UsageError("--keys: path of the relay's key file is required (created if missing)");
  if (values.region !== undefined && !/^[A-Z]{2}$/.test(values.region))
    throw new UsageError("--region: expected two capital letters (ISO 3166)");
  parseEndpoint("--listen", values.listen); // names the flag on a bad endpoint
  const createsPerSecond =
    values["creates-per-second"] === undefined ? undefined : Number(values["creates-per-second"]);
  if (createsPerSecond !== undefined && !(Number.isInteger(createsPerSecond) && createsPerSecond > 0)) {
    throw new UsageError(`--creates-per-second: expected a positive integer, got "${values["creates-per-second"]}"`);
  }
  const config = parseNodeConfig(
    {
      role: values.exit ? "exit" : "relay",
      relay: {
        listen: values.listen,
        keys: values.keys,
        name: values.name,
        region: values.region,
        advertiseHost: values["advertise-host"],
        descriptorOut: values["descriptor-out"],
        createsPerSecond,
      },
      metrics: values.metrics,
      ...(values.exit
        ? {
            exit: {
              allowPrivateTargets: values["allow-private-targets"],
              allowLoopbackTargets: values["allow-loopback-targets"],
            },
          }
        : {}),
    },
    "flags",
  );
  const node = await startNode(config, log);
  onShutdown(log, () => node.close());
}

async function entry(argv: string[], log: Logger): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      socks: { type: "string", default: "127.0.0.1:10809" },
      directory: { type: "string" },
      hops: { type: "string", default: "3" },
      metrics: { type: "string" },
    },
  });
  if (!values.directory) throw new UsageError("--directory: folder of relay descriptors (*.json) is required");
  const hops = Number(values.hops);
  if (!Number.isInteger(hops) || hops < 1 || hops > 5)
    throw new UsageError(`--hops: expected 1..5, got "${values.hops}"`);
  parseEndpoint("--socks", values.socks);
  const node = await startNode(
    parseNodeConfig(
      {
        role: "entry",
        entry: { socks: values.socks, directory: values.directory, hops },
        metrics: values.metrics,
      },
      "flags",
    ),
    log,
  );
  onShutdown(log, () => node.close());
}

/** `x0t node start --config node.json` (entry, relay or exit) and `x0t node schema`. */
async function nodeCommand(argv: string[], log: Logger): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === "schema") {
    process.stdout.write(JSON.stringify(nodeConfigJsonSchema(), null, 2) + "\n");
    return;
  }
  if (sub !== "start")
    throw new UsageError(`usage: x0t node start --config node.json | x0t node schema (got "${sub ?? ""}")`);
  const { values } = parseArgs({ args: rest, strict: true, options: { config: { type: "string" } } });
  if (!values.config) throw new UsageError("--config: path of the node's JSON config file is required");
  const config = loadNodeConfig(values.config);
  const nodeLog = config.log ? createLogger({ level: config.log.level }) : log;
  const node = await startNode(config, nodeLog);
  onShutdown(nodeLog, () => node.close());
}

function keysCommand(argv: string[]): void {
  const { values } = parseArgs({ args: argv, strict: true, options: { keys: { type: "string" } } });
  if (!values.keys) throw new UsageError("--keys: path of the key file is required");
  const { keys } = loadOrCreateKeys(values.keys);
  process.stdout.write(`keysHash 0x${keys.keysHash.toString("hex")}\n`);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const log = createLogger({ level: parseLogLevel(process.env.X0T_LOG_LEVEL) });
  try {
    await initCrypto();
    if (command === "relay") await relay(rest, log);
    else if (command === "entry") await entry(rest, log);
    else if (command === "node") await nodeCommand(rest, log);
    else if (command === "keys") keysCommand(rest);
    else if (command === "treasury") return await runTreasuryCommand(rest);
    else if ((ACCOUNT_COMMANDS as readonly string[]).includes(command ?? "")) return await runAccountCommand(argv);
    else
      throw new UsageError(
        `usage: x0t node|relay|entry|keys|treasury|${ACCOUNT_COMMANDS.join("|")} [options]  (got "${command ?? ""}")`,
      );
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.error(error instanceof UsageError || error instanceof ConfigError ? "usage" : "failed to start", {
      error: message,
    });
    return 2;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => {
    if (code !== 0) process.exit(code);
  });
}

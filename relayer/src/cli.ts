#!/usr/bin/env node
/**
 * x0t — the relayer's command line.
 *
 *   x0t relay --listen 127.0.0.1:9001 --keys relay.key [--exit] [--allow-loopback-targets]
 *             [--allow-private-targets]
 *             [--name r1] [--region DE] [--descriptor-out dir/r1.json] [--creates-per-second 200]
 *   x0t entry --socks 127.0.0.1:10809 --directory dir [--hops 3]
 *   x0t keys  --keys relay.key          prints the keysHash to register on-chain
 *   x0t treasury propose|sign|execute   council payouts from the treasury Safe (cli/treasury.ts)
 *   x0t buy|key|lock|stake|unbond|withdraw|claim|status   a user's and an operator's transactions
 *                                       (cli/account.ts; --json on each)
 *
 * Logs are JSON lines on stderr; X0T_LOG_LEVEL=debug|info|warn|error (default info).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { initCrypto, publicKeysOf } from "./crypto/keys.ts";
import { connectTarget, createExitPolicy } from "./exit/index.ts";
import { createLogger, parseLogLevel } from "./log.ts";
import type { Logger } from "./log.ts";
import { descriptorOf, readDirectory } from "./node/directory.ts";
import { startEntry } from "./node/entry.ts";
import { loadOrCreateKeys } from "./node/keyfile.ts";
import { startRelay } from "./node/relay.ts";
import { ACCOUNT_COMMANDS, runAccountCommand } from "./cli/account.ts";
import { runTreasuryCommand } from "./cli/treasury.ts";

export class UsageError extends Error {
  override name = "UsageError";
}

/** "host:port" or "[v6]:port" → parts; names the flag on error. */
export function parseEndpoint(flag: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || port < 0 || port > 65535) throw new UsageError(`--${flag}: expected host:port, got "${value}"`);
  return { host: (m[1] ?? m[2]) as string, port };
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
    },
  });
  if (!values.keys) throw new UsageError("--keys: path of the relay's key file is required (created if missing)");
  if (values.region !== undefined && !/^[A-Z]{2}$/.test(values.region))
    throw new UsageError("--region: expected two capital letters (ISO 3166)");
  const listen = parseEndpoint("listen", values.listen);
  const createsPerSecond =
    values["creates-per-second"] === undefined ? undefined : Number(values["creates-per-second"]);
  if (createsPerSecond !== undefined && !(Number.isInteger(createsPerSecond) && createsPerSecond > 0)) {
    throw new UsageError(`--creates-per-second: expected a positive integer, got "${values["creates-per-second"]}"`);
  }
  const { keys, created } = loadOrCreateKeys(values.keys);
  const name = values.name ?? `relay-${keys.keysHash.toString("hex").slice(0, 8)}`;
  const rlog = log.child({ relay: name });
  if (created) rlog.info("new static keys written", { file: values.keys });
  const policy = values.exit
    ? createExitPolicy({
        allowPrivateTargets: values["allow-private-targets"],
        allowLoopbackTargets: values["allow-loopback-targets"],
        logger: rlog,
      })
    : undefined;
  const node = await startRelay({
    host: listen.host,
    port: listen.port,
    keys,
    logger: rlog,
    limits: createsPerSecond === undefined ? undefined : { createsPerSecond },
    openTarget: policy ? (target, signal) => connectTarget(target, policy, { signal, logger: rlog }) : undefined,
  });
  if (values["descriptor-out"]) {
    mkdirSync(dirname(values["descriptor-out"]), { recursive: true });
    const descriptor = descriptorOf({
      name,
      host: values["advertise-host"] ?? node.host,
      port: node.port,
      exit: values.exit,
      region: values.region,
      keys: publicKeysOf(keys),
    });
    writeFileSync(values["descriptor-out"], JSON.stringify(descriptor, null, 2) + "\n");
  }
  rlog.info("relay ready", { port: node.port, keysHash: `0x${keys.keysHash.toString("hex")}`, exit: values.exit });
  onShutdown(rlog, () => node.close());
}

async function entry(argv: string[], log: Logger): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      socks: { type: "string", default: "127.0.0.1:10809" },
      directory: { type: "string" },
      hops: { type: "string", default: "3" },
    },
  });
  if (!values.directory) throw new UsageError("--directory: folder of relay descriptors (*.json) is required");
  const hops = Number(values.hops);
  if (!Number.isInteger(hops) || hops < 1 || hops > 5)
    throw new UsageError(`--hops: expected 1..5, got "${values.hops}"`);
  const socks = parseEndpoint("socks", values.socks);
  const dir = values.directory;
  readDirectory(dir); // fail at start-up on a bad descriptor, naming the file and field
  const node = await startEntry({
    socksHost: socks.host,
    socksPort: socks.port,
    hops,
    directory: () => readDirectory(dir),
    logger: log.child({ entry: "socks" }),
  });
  onShutdown(log, () => node.close());
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
    else if (command === "keys") keysCommand(rest);
    else if (command === "treasury") return await runTreasuryCommand(rest);
    else if ((ACCOUNT_COMMANDS as readonly string[]).includes(command ?? "")) return await runAccountCommand(argv);
    else
      throw new UsageError(
        `usage: x0t relay|entry|keys|treasury|${ACCOUNT_COMMANDS.join("|")} [options]  (got "${command ?? ""}")`,
      );
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.error(error instanceof UsageError ? "usage" : "failed to start", { error: message });
    return 2;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => {
    if (code !== 0) process.exit(code);
  });
}

/**
 * The commands of `x0t` (usage: relayer/src/cli.ts, which loads this module once it has set the
 * process's heap up).
 */
import { parseArgs } from "node:util";
import { initCrypto } from "../crypto/keys.ts";
import { createLogger, parseLogLevel } from "../log.ts";
import type { Logger } from "../log.ts";
import { ConfigError, loadNodeConfig, nodeConfigJsonSchema, parseEndpoint, parseNodeConfig } from "../node/config.ts";
import type { NodeConfig } from "../node/config.ts";
import { loadOrCreateKeys } from "../node/keyfile.ts";
import { type RunningNode, startNode } from "../node/run.ts";
import { heapForRole, releaseYoungGeneration } from "../node/heap.ts";
import { domainOf, startRegistry } from "../node/run-mesh.ts";
import type { RegistrySource } from "../mesh/registry-source.ts";
import { startBootstrapNode } from "../node/bootstrap.ts";
import { type Address, isAddress } from "viem";
import { ACCOUNT_COMMANDS, readDeployment, runAccountCommand } from "./account.ts";
import { runTreasuryCommand } from "./treasury.ts";

/** Starts a node in this process, with the heap settings of its role (node/heap.ts). */
async function startNodeProcess(config: NodeConfig, log: Logger): Promise<RunningNode> {
  log.info("heap", { role: config.role, young: heapForRole(config.role) });
  return startNode(config, log);
}

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
      directory: { type: "string" },
      bootstrap: { type: "string", multiple: true },
      trust: { type: "string", multiple: true },
      "signer-key": { type: "string" },
      operator: { type: "string" },
      deployment: { type: "string" },
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
        ...(values.directory || values.bootstrap
          ? {
              mesh: {
                directory: values.directory,
                bootstrap: values.bootstrap,
                trust: trustFlags(values.trust),
                signerKey: values["signer-key"],
                operator: values.operator,
              },
            }
          : {}),
      },
      metrics: values.metrics,
      ...(values.deployment ? { chain: { deployment: values.deployment } } : {}),
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
  const node = await startNodeProcess(config, log);
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
      knowledge: { type: "string" },
      "diversity-prefix": { type: "string" },
      bootstrap: { type: "string", multiple: true },
      trust: { type: "string", multiple: true },
      deployment: { type: "string" },
    },
  });
  if (!values.directory && !values.bootstrap)
    throw new UsageError("--directory: folder of relay descriptors (*.json) is required (or --bootstrap)");
  const prefix = values["diversity-prefix"];
  if (prefix !== undefined && prefix !== "on" && prefix !== "off")
    throw new UsageError(`--diversity-prefix: expected on or off, got "${prefix}"`);
  const hops = Number(values.hops);
  if (!Number.isInteger(hops) || hops < 1 || hops > 5)
    throw new UsageError(`--hops: expected 1..5, got "${values.hops}"`);
  parseEndpoint("--socks", values.socks);
  const mesh = {
    knowledge: values.knowledge,
    bootstrap: values.bootstrap,
    trust: trustFlags(values.trust),
    ...(prefix ? { diversity: { prefix: prefix === "on" } } : {}),
  };
  const node = await startNodeProcess(
    parseNodeConfig(
      {
        role: "entry",
        entry: { socks: values.socks, directory: values.directory, hops, mesh },
        metrics: values.metrics,
        ...(values.deployment ? { chain: { deployment: values.deployment } } : {}),
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
  const node = await startNodeProcess(config, nodeLog);
  onShutdown(nodeLog, () => node.close());
}

/** `--trust 0xsigner[:0xoperator]` flags → the config's trust list (the schema checks the addresses). */
function trustFlags(values: string[] | undefined): { signer: string; operator?: string }[] | undefined {
  return values?.map((v) => {
    const [signer = "", operator] = v.split(":");
    return operator === undefined ? { signer } : { signer, operator };
  });
}

/** `x0t bootstrap`: a bootstrap node for signed relay descriptors (node/bootstrap.ts). */
async function bootstrapCommand(argv: string[], log: Logger): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      listen: { type: "string", default: "127.0.0.1:7000" },
      deployment: { type: "string" },
      trust: { type: "string", multiple: true },
      peer: { type: "string", multiple: true },
      registry: { type: "boolean", default: false },
      "rpc-url": { type: "string" },
      "registry-checkpoint": { type: "string" },
    },
  });
  if (!values.deployment)
    throw new UsageError("--deployment: the deployment file is required (descriptors are signed for its registry)");
  const trust = trustFlags(values.trust) ?? [];
  if (trust.length === 0 && !values.registry)
    throw new UsageError(
      "--trust: list at least one signer whose descriptors to keep, or pass --registry to check them against the RelayerRegistry",
    );
  for (const [i, t] of trust.entries())
    for (const [what, value] of Object.entries(t))
      if (!isAddress(value)) throw new UsageError(`--trust (${i + 1}): ${what} "${value}" is not an address`);
  for (const peer of values.peer ?? [])
    if (!URL.canParse(peer)) throw new UsageError(`--peer: expected a URL, got "${peer}"`);
  if (!values.registry && (values["rpc-url"] || values["registry-checkpoint"]))
    throw new UsageError("--rpc-url and --registry-checkpoint go with --registry");
  const { host, port } = parseEndpoint("--listen", values.listen);
  const domain = domainOf({ deployment: values.deployment }, "x0t bootstrap", "--deployment");
  let registry: RegistrySource | undefined;
  if (values.registry) {
    const deployment = readDeployment(values.deployment);
    const rpcUrl = values["rpc-url"] ?? deployment.rpcUrl;
    if (!rpcUrl || !URL.canParse(rpcUrl))
      throw new UsageError(
        `--rpc-url: ${rpcUrl ? `expected a URL, got "${rpcUrl}"` : "required by --registry (the deployment file names no rpcUrl)"}`,
      );
    registry = await startRegistry(
      { chainId: deployment.chainId, rpcUrl, contracts: deployment.contracts },
      values["registry-checkpoint"],
      log,
    );
  }
  const node = await startBootstrapNode({
    host,
    port,
    domain,
    trust: trust as { signer: Address; operator?: Address }[],
    registry,
    peers: values.peer ?? [],
    logger: log,
  }).catch(async (error: unknown) => {
    await registry?.stop();
    throw error;
  });
  onShutdown(log, async () => {
    await node.close();
    await registry?.stop();
  });
}

function keysCommand(argv: string[]): void {
  const { values } = parseArgs({ args: argv, strict: true, options: { keys: { type: "string" } } });
  if (!values.keys) throw new UsageError("--keys: path of the key file is required");
  const { keys } = loadOrCreateKeys(values.keys);
  process.stdout.write(`keysHash 0x${keys.keysHash.toString("hex")}\n`);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // Only a node decides to keep the young generation held (by its role); any other command,
  // a bootstrap node included, lets it grow as V8 does.
  if (command !== "relay" && command !== "entry" && !(command === "node" && rest[0] === "start"))
    releaseYoungGeneration();
  const log = createLogger({ level: parseLogLevel(process.env.X0T_LOG_LEVEL) });
  try {
    await initCrypto();
    if (command === "relay") await relay(rest, log);
    else if (command === "entry") await entry(rest, log);
    else if (command === "node") await nodeCommand(rest, log);
    else if (command === "keys") keysCommand(rest);
    else if (command === "bootstrap") await bootstrapCommand(rest, log);
    else if (command === "treasury") return await runTreasuryCommand(rest);
    else if ((ACCOUNT_COMMANDS as readonly string[]).includes(command ?? "")) return await runAccountCommand(argv);
    else
      throw new UsageError(
        `usage: x0t node|relay|entry|bootstrap|keys|treasury|${ACCOUNT_COMMANDS.join("|")} [options]  (got "${command ?? ""}")`,
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

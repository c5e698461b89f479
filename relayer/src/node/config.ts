/**
 * The configuration file of `x0t node start --config node.json`: one JSON object whose `role` says
 * what the node is — an `entry` (the SOCKS5 port a user's apps talk to), a `relay` or an `exit`.
 * Validated by a schema (zod) before anything starts; an error names the key (`entry.payer.lockMiB`).
 * Relative paths are taken from the config file's folder. `nodeConfigJsonSchema()` gives the same
 * schema as JSON Schema (`x0t node schema`), for editors; docs/settlement.md ("Node configuration") lists the keys.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { z } from "zod/v4";

const endpoint = z
  .string()
  .regex(/^(?:\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):\d{1,5}$/, "expected host:port or [v6]:port")
  .describe("host:port");
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "expected an address (0x and 40 hex digits)");
const path = z.string().min(1, "expected a file path");
const positiveInt = z.number().int().positive();

const chain = z
  .strictObject({
    deployment: path.describe("deployment file: chainId, rpcUrl and contract addresses (npm start writes one)"),
    rpcUrl: z.url().optional().describe("JSON-RPC URL; default: the deployment's rpcUrl"),
  })
  .describe("how the node reaches the protocol contracts");

const uptime = z
  .strictObject({
    peers: path.describe(
      "folder of relay descriptors (*.json) to measure; each is checked against its RelayerRegistry record",
    ),
    knowledge: path.optional().describe("SQLite file of the measurements (default: beside the accounting file)"),
    probeIntervalMs: positiveInt
      .optional()
      .describe("probe interval per relay (default: 120 probes per epoch, 250 ms..30 s)"),
  })
  .describe("measure the other relays and attest their uptime (they earn the +10% bonus with k attestations)");

const relayPayments = z
  .strictObject({
    operator: address.describe("the operator address the relay is registered under; receipts pay it"),
    signerKey: path.describe("the node signer's private key (0x hex, mode 0600): submits, lands locks, claims"),
    accounting: path.describe("SQLite file of receipts and batches"),
    allowanceMiB: positiveInt
      .default(16)
      .describe("credit extended to a payer account before its lock lands, MiB owed (the relay's exposure)"),
    receiptSlackCells: positiveInt
      .default(4096)
      .describe("how far an account's receipts may lag the relay's count (above the payers' receipt interval)"),
    minLockMiB: positiveInt.default(1).describe("smallest lock request the relay lands (and pays the gas for), MiB"),
    settleEverySeconds: positiveInt.default(30).describe("settlement round interval"),
    claimAboveX0T: z
      .union([z.string().regex(/^\d+(\.\d{1,18})?$/, "expected an amount of X0T"), z.null()])
      .default("0")
      .describe("claim automatically once final rewards reach this many X0T; null: only `x0t claim`"),
    bumpAfterBlocks: positiveInt.default(3).describe("replace a transaction unmined for this many blocks"),
    bumpPercent: z.number().int().min(10).max(500).default(25).describe("fee raise per replacement, percent"),
    maxFeeGwei: z
      .string()
      .regex(/^\d+(\.\d{1,9})?$/, "expected an amount of gwei")
      .optional()
      .describe("never offer more than this per gas (default: no cap)"),
    uptime: uptime.optional(),
  })
  .describe("a paid relay: counts, judges receipts, settles and claims");

const relay = z.strictObject({
  listen: endpoint.default("127.0.0.1:9001"),
  keys: path.describe("the relay's static key file (created if missing, mode 0600)"),
  name: z.string().min(1).max(64).optional(),
  region: z
    .string()
    .regex(/^[A-Z]{2}$/, "expected two capital letters (ISO 3166)")
    .optional(),
  advertiseHost: z.string().min(1).optional().describe("host written to the descriptor (default: the listen host)"),
  descriptorOut: path.optional().describe("where to write the relay's descriptor"),
  createsPerSecond: positiveInt.optional(),
  payments: relayPayments.optional(),
});

const exitPolicy = z.strictObject({
  allowPrivateTargets: z.boolean().default(false),
  allowLoopbackTargets: z.boolean().default(false),
});

const payer = z
  .strictObject({
    clientKey: path.describe("the client key file (0x hex, mode 0600) authorised with `x0t key authorize`"),
    state: path.describe("SQLite file of signed counts and lock nonces"),
    lockMiB: positiveInt.default(256).describe("credit each hop is asked to lock at a time, MiB"),
    lockEpochs: z.number().int().min(1).max(24).default(2).describe("how many epochs a lock request lasts"),
    receiptEveryCells: positiveInt.default(1024).describe("a receipt to each hop every this many cells"),
    receiptEverySeconds: positiveInt.default(10),
  })
  .describe("pay the hops of every circuit in-band with this client key");

const entry = z.strictObject({
  socks: endpoint.default("127.0.0.1:10809"),
  directory: path.describe("folder of relay descriptors (*.json)"),
  hops: z.number().int().min(1).max(5).default(3),
  payer: payer.optional(),
});

const log = z.strictObject({ level: z.enum(["debug", "info", "warn", "error"]).default("info") }).optional();
const metrics = z
  .string()
  .regex(/^(off|\d{1,5}|(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):\d{1,5})$/, 'expected "port", "host:port" or "off"')
  .optional()
  .describe("Prometheus /metrics: port (on 127.0.0.1), host:port, or off (default)");

export const nodeConfigSchema = z.discriminatedUnion("role", [
  z.strictObject({ role: z.literal("relay"), chain: chain.optional(), relay, log, metrics }),
  z.strictObject({
    role: z.literal("exit"),
    chain: chain.optional(),
    relay,
    exit: exitPolicy.default({ allowPrivateTargets: false, allowLoopbackTargets: false }),
    log,
    metrics,
  }),
  z.strictObject({ role: z.literal("entry"), chain: chain.optional(), entry, log, metrics }),
]);

export type NodeConfig = z.infer<typeof nodeConfigSchema>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** "host:port" or "[v6]:port" → parts; `what` (a flag or a config key) names the setting on error. */
export function parseEndpoint(what: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || port < 0 || port > 65535) throw new ConfigError(`${what}: expected host:port, got "${value}"`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** The node config schema as JSON Schema (draft 2020-12). */
export function nodeConfigJsonSchema(): unknown {
  return z.toJSONSchema(nodeConfigSchema, { io: "input" });
}

/** Validates `value`; the error lists every problem as `key.path: message`. */
export function parseNodeConfig(value: unknown, source: string): NodeConfig {
  const result = nodeConfigSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const at = issue.path.join(".");
      if (issue.code === "unrecognized_keys")
        return issue.keys.map((k) => `${at ? `${at}.` : ""}${k}: unknown key`).join("; ");
      if (at === "role") return `role: expected "entry", "relay" or "exit"`;
      return `${at || "(root)"}: ${issue.message}`;
    });
    throw new ConfigError(`${source}: ${problems.join("; ")}`);
  }
  const config = result.data;
  const needsChain =
    (config.role === "entry" && config.entry.payer) || (config.role !== "entry" && config.relay.payments);
  if (needsChain && !config.chain)
    throw new ConfigError(`${source}: chain: required when the node pays or is paid (chain.deployment)`);
  return config;
}

/** Reads and validates a config file; relative paths in it are made absolute from its folder. */
export function loadNodeConfig(file: string): NodeConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new ConfigError(`--config: cannot read ${file}: ${(error as Error).message}`);
  }
  const config = parseNodeConfig(raw, file);
  const base = dirname(resolve(file));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  if (config.chain) config.chain.deployment = abs(config.chain.deployment);
  if (config.role === "entry") {
    config.entry.directory = abs(config.entry.directory);
    if (config.entry.payer) {
      config.entry.payer.clientKey = abs(config.entry.payer.clientKey);
      config.entry.payer.state = abs(config.entry.payer.state);
    }
  } else {
    config.relay.keys = abs(config.relay.keys);
    if (config.relay.descriptorOut) config.relay.descriptorOut = abs(config.relay.descriptorOut);
    if (config.relay.payments) {
      config.relay.payments.signerKey = abs(config.relay.payments.signerKey);
      config.relay.payments.accounting = abs(config.relay.payments.accounting);
      const u = config.relay.payments.uptime;
      if (u) {
        u.peers = abs(u.peers);
        if (u.knowledge) u.knowledge = abs(u.knowledge);
      }
    }
  }
  return config;
}

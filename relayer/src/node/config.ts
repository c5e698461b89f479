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

const trusted = z
  .array(
    z.strictObject({
      signer: address.describe("a node signer whose descriptors are trusted without the registry"),
      operator: address.optional().describe("only for this operator"),
    }),
  )
  .describe("offline trust: signers this node vouches for (bootstrap-only networks)");

const bootstrapUrls = z
  .array(z.url())
  .min(1)
  .describe("bootstrap nodes (x0t bootstrap) that hand out signed relay descriptors, as http://host:port");

/** Where a node learns of relays from signed descriptors (mesh/sources.ts); shared by relays and entries. */
const meshSources = {
  bootstrap: bootstrapUrls.optional(),
  trust: trusted.optional(),
  registry: z
    .boolean()
    .default(false)
    .describe("check descriptors against the RelayerRegistry (needs chain; its verdict is final once read)"),
  registryCheckpoint: path.optional().describe("where the registry follower keeps its checkpoint (JSON)"),
};

const relayMesh = z
  .strictObject({
    directory: path
      .optional()
      .describe("folder of relay descriptors (*.json): this relay EXTENDs only to the relays they name"),
    ...meshSources,
    signerKey: path
      .optional()
      .describe("the node signer's key file (0x hex, 0600) that signs this relay's descriptor (default: payments')"),
    operator: address.optional().describe("the operator in the descriptor (default: relay.payments.operator)"),
    bandwidth: z.number().int().nonnegative().default(0).describe("advertised bytes per second (0: not advertised)"),
  })
  .describe("the mesh: which relays this one knows (and EXTENDs to), and publishing its signed descriptor");

const entryMesh = z
  .strictObject({
    knowledge: path
      .optional()
      .describe("SQLite file of what the mesh measured of every relay (default: in memory, forgotten on restart)"),
    ...meshSources,
    diversity: z
      .strictObject({
        region: z.boolean().default(true),
        prefix: z
          .boolean()
          .optional()
          .describe("no two hops in one IPv4 /16 or IPv6 /32 (default: on unless every relay is on loopback)"),
        operator: z.boolean().default(true),
      })
      .optional()
      .describe("no two hops of a circuit in one region, network prefix or operator"),
    standbys: z.boolean().default(true).describe("one pre-built standby circuit per active isolation class"),
    beaconIntervalMs: z.number().int().min(50).max(60_000).default(500).describe("beacons on busy circuits"),
    idleBeaconIntervalMs: z
      .number()
      .int()
      .min(50)
      .max(3_600_000)
      .optional()
      .describe("beacons on circuits without stream traffic (default 500; 30000 when paying: beacons are paid cells)"),
  })
  .describe("the mesh: where relays come from, route choice, beacons and standby circuits");

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
  mesh: relayMesh.optional(),
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
  directory: path.optional().describe("folder of relay descriptors (*.json); required unless mesh.bootstrap"),
  hops: z.number().int().min(1).max(5).default(3),
  payer: payer.optional(),
  mesh: entryMesh.optional(),
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
  const mesh = config.role === "entry" ? config.entry.mesh : config.relay.mesh;
  const prefix = config.role === "entry" ? "entry.mesh" : "relay.mesh";
  if (mesh?.registry && !config.chain)
    throw new ConfigError(`${source}: chain: required by ${prefix}.registry (chain.deployment, chain.rpcUrl)`);
  // Signed descriptors live in the registry's EIP-712 domain: the deployment names it.
  if ((mesh?.bootstrap || (config.role !== "entry" && config.relay.mesh?.signerKey)) && !config.chain)
    throw new ConfigError(
      `${source}: chain.deployment: required by ${prefix} (descriptors are signed for its registry)`,
    );
  if (mesh?.bootstrap && !mesh.registry && !mesh.trust?.length)
    throw new ConfigError(
      `${source}: ${prefix}.trust: list the signers to trust, or set ${prefix}.registry (a descriptor needs someone to vouch for it)`,
    );
  if (config.role === "entry" && config.entry.mesh?.registry && !config.entry.mesh.bootstrap)
    throw new ConfigError(
      `${source}: entry.mesh.bootstrap: required by entry.mesh.registry (the registry names relays, bootstrap nodes carry their keys)`,
    );
  if (config.role === "entry" && !config.entry.directory && !config.entry.mesh?.bootstrap)
    throw new ConfigError(`${source}: entry.directory: required unless entry.mesh.bootstrap names bootstrap nodes`);
  if (config.role !== "entry" && config.relay.mesh?.bootstrap) {
    const r = config.relay;
    if (!r.mesh?.signerKey && !r.payments)
      throw new ConfigError(`${source}: relay.mesh.signerKey: required to publish this relay's descriptor`);
    if (!r.mesh?.operator && !r.payments)
      throw new ConfigError(`${source}: relay.mesh.operator: required to publish this relay's descriptor`);
    if (!r.region) throw new ConfigError(`${source}: relay.region: required to publish this relay's descriptor`);
  }
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
    if (config.entry.directory) config.entry.directory = abs(config.entry.directory);
    const m = config.entry.mesh;
    if (m?.knowledge) m.knowledge = abs(m.knowledge);
    if (m?.registryCheckpoint) m.registryCheckpoint = abs(m.registryCheckpoint);
    if (config.entry.payer) {
      config.entry.payer.clientKey = abs(config.entry.payer.clientKey);
      config.entry.payer.state = abs(config.entry.payer.state);
    }
  } else {
    config.relay.keys = abs(config.relay.keys);
    if (config.relay.descriptorOut) config.relay.descriptorOut = abs(config.relay.descriptorOut);
    const m = config.relay.mesh;
    if (m?.directory) m.directory = abs(m.directory);
    if (m?.signerKey) m.signerKey = abs(m.signerKey);
    if (m?.registryCheckpoint) m.registryCheckpoint = abs(m.registryCheckpoint);
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

/**
 * The mesh parts of `x0t node start` (node/config.ts `relay.mesh`, `entry.mesh`): where a node
 * learns of relays — a descriptor folder, bootstrap nodes handing out signed descriptors, the
 * RelayerRegistry — which relays a relay EXTENDs to, and a relay's own signed descriptor. Kept
 * apart from run.ts, which composes the rest of a node.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type Address, createPublicClient, getAddress, http, type PublicClient } from "viem";
import { readDeployment } from "../cli/account.ts";
import type { ProtocolAddresses } from "../chain/account.ts";
import type { StaticKeys } from "../crypto/keys.ts";
import type { Logger } from "../log.ts";
import { advertisedHostProblem, type DescriptorDomain, descriptorDomain, splitEndpoint } from "../mesh/descriptor.ts";
import { type KnownRelay, knownRelayCheck, type KnownRelayCheck } from "../mesh/known-relays.ts";
import { RegistrySource } from "../mesh/registry-source.ts";
import type { NodeRecord } from "../mesh/verify.ts";
import { type DescriptorSources, startDescriptorSources } from "../mesh/sources.ts";
import type { NodeMetrics } from "../metrics/index.ts";
import { ConfigError, type NodeConfig, parseEndpoint } from "./config.ts";
import { type DirectoryEntry, readDirectory } from "./directory.ts";
import { loadEvmKey } from "./evmkey.ts";

export interface ChainHandle {
  chainId: number;
  rpcUrl: string;
  contracts: ProtocolAddresses;
}

/** The descriptors' EIP-712 domain: the registry of the deployment (read from the file, no RPC). */
export function domainOf(chain: NodeConfig["chain"], key: string, setting = "chain.deployment"): DescriptorDomain {
  if (!chain) throw new ConfigError(`${setting}: required by ${key}`);
  try {
    const d = readDeployment(chain.deployment);
    return descriptorDomain(d.chainId, d.contracts.RelayerRegistry);
  } catch (error) {
    throw new ConfigError(`${setting}: ${(error as Error).message.replace(/^--deployment: /, "")}`);
  }
}

/** The registry follower (a trust anchor, and for relays a list of known relays), synced once. */
export async function startRegistry(
  chain: ChainHandle,
  checkpoint: string | undefined,
  log: Logger,
): Promise<RegistrySource> {
  // Its own transport without viem's retries: the follower backs off by itself.
  const client = createPublicClient({ transport: http(chain.rpcUrl, { retryCount: 1 }) }) as PublicClient;
  if (checkpoint) mkdirSync(dirname(checkpoint), { recursive: true });
  const registry = new RegistrySource({
    client,
    registry: chain.contracts.RelayerRegistry,
    checkpointPath: checkpoint,
    logger: log.child({ component: "registry" }),
  });
  try {
    await registry.syncOnce();
  } catch (error) {
    log.warn("registry not read yet; the follower keeps trying", { error: (error as Error).message.split("\n")[0] });
  }
  registry.start();
  return registry;
}

/** The configured signers as a bootstrap trust list (checksummed). */
export function trustList(trust: readonly { signer: string; operator?: string }[] | undefined) {
  return trust?.map((t) => ({
    signer: getAddress(t.signer),
    ...(t.operator ? { operator: getAddress(t.operator) } : {}),
  }));
}

/** Relays folder entries and verified descriptors together, one per keys hash. */
function merged(...lists: readonly DirectoryEntry[][]): DirectoryEntry[] {
  const out = new Map<string, DirectoryEntry>();
  for (const list of lists) for (const e of list) out.set(Buffer.from(e.keys.keysHash).toString("hex"), e);
  return [...out.values()];
}

/**
 * The relays a relay may EXTEND to from the registry's records: active ones whose endpoint names
 * an IP address, as a signed descriptor must. The contract accepts any endpoint string; a record
 * naming a host name or a wildcard is skipped, so that no EXTEND makes a relay resolve a name an
 * operator chose (and point it anywhere later).
 */
export function registryRelays(records: readonly NodeRecord[]): KnownRelay[] {
  return records.flatMap((rec) => {
    const at = rec.active && rec.endpoint ? splitEndpoint(rec.endpoint) : undefined;
    if (!at || !rec.keysHash || advertisedHostProblem(at.host)) return [];
    return [{ ...at, keys: { keysHash: Buffer.from(rec.keysHash.slice(2), "hex") } }];
  });
}

export interface RelayMesh {
  /** Undefined when no source is configured: the relay extends to any relay a client names. */
  isKnownRelay: KnownRelayCheck | undefined;
  /** Once the relay listens: publish its descriptor to the bootstrap nodes. */
  start(listening: { host: string; port: number }): Promise<void>;
  close(): Promise<void>;
}

export async function prepareRelayMesh(
  config: Extract<NodeConfig, { role: "relay" | "exit" }>,
  context: {
    name: string;
    keys: StaticKeys;
    connect: () => Promise<ChainHandle>;
    metrics?: NodeMetrics;
    log: Logger;
  },
): Promise<RelayMesh> {
  const r = config.relay;
  const m = r.mesh;
  const log = context.log;
  if (m?.bootstrap) {
    // The descriptor is refused by every verifier if it names a host name or a wildcard address:
    // say so now, naming the key, rather than publish something nobody keeps.
    const host = r.advertiseHost ?? parseEndpoint("relay.listen", r.listen).host;
    const problem = advertisedHostProblem(host.replace(/^\[|\]$/g, "").toLowerCase());
    if (problem)
      throw new ConfigError(
        `relay.advertiseHost: this relay would publish "${host}" in its descriptor, which must be ${problem}; ` +
          `set relay.advertiseHost (--advertise-host) to the IP address clients reach it at`,
      );
  }
  const registry = m?.registry ? await startRegistry(await context.connect(), m.registryCheckpoint, log) : undefined;
  let sources: DescriptorSources | undefined;
  const lists: (() => readonly KnownRelay[])[] = [];
  if (m?.directory) {
    const dir = m.directory;
    lists.push(() => readDirectory(dir));
  }
  if (m?.bootstrap) lists.push(() => sources?.entries() ?? []);
  if (registry) lists.push(() => registryRelays(registry.records()));
  if (lists.length === 0)
    log.info("no relay.mesh source: this relay extends to any relay a client names (set relay.mesh.directory)");
  // A relay that just joined may be asked to extend to one it has not heard of yet: ask the
  // bootstrap nodes again at once rather than at the next round. Any client can send such
  // EXTENDs, so this starts at most one round per MIN_REQUESTED_ROUND_GAP_MS (sources.ts).
  const onMiss = () => void sources?.requestRound();
  return {
    isKnownRelay: lists.length > 0 ? knownRelayCheck(lists, { logger: log, onMiss }) : undefined,
    async start(listening) {
      if (!m?.bootstrap) return;
      const signer = loadEvmKey(
        m.signerKey ?? r.payments!.signerKey,
        m.signerKey ? "relay.mesh.signerKey" : "relay.payments.signerKey",
      );
      const operator = getAddress((m.operator ?? r.payments!.operator) as Address);
      const host = (r.advertiseHost ?? listening.host).toLowerCase();
      const endpoint = `${host.includes(":") ? `[${host}]` : host}:${listening.port}`;
      const exit = config.role === "exit" ? config.exit : undefined;
      sources = await startDescriptorSources({
        domain: domainOf(config.chain, "relay.mesh.bootstrap"),
        bootstrap: m.bootstrap,
        trust: trustList(m.trust),
        registry,
        publish: {
          signer,
          fields: () => ({
            operator,
            nickname: context.name.slice(0, 32),
            endpoint,
            region: r.region as string,
            x25519: context.keys.x25519.publicKey.toString("hex"),
            mlkem: Buffer.from(context.keys.mlkemPublic).toString("base64"),
            keysHash: `0x${context.keys.keysHash.toString("hex")}`,
            exit: exit !== undefined,
            exitPolicy: !exit
              ? "none"
              : `${exit.allowLoopbackTargets ? "accept loopback; " : ""}${exit.allowPrivateTargets ? "accept" : "reject"} private; accept *:*`,
            bandwidth: m.bandwidth,
          }),
        },
        onDropped: (reason, n) => context.metrics?.mesh("mesh_descriptors_dropped", { reason }, n),
        logger: log.child({ component: "descriptors" }),
      });
      log.info("descriptor published to the bootstrap nodes", { endpoint, operator, nodes: m.bootstrap.length });
    },
    async close() {
      await sources?.close();
      await registry?.stop();
    },
  };
}

/**
 * The entry's descriptor folder, read on every call, with a warning once per relay whose region or
 * operator an enabled diversity rule cannot check. Such a relay is still used (the folder is the
 * operator's own file, and refusing it would leave a network without regions with no path), but
 * the rule cannot keep it apart from others: the operator is told which relay and how to fix it.
 */
export function folderDirectory(
  dir: string,
  diversity: { region?: boolean; operator?: boolean } | undefined,
  log: Logger,
): () => DirectoryEntry[] {
  const warned = new Set<string>();
  return () => {
    const entries = readDirectory(dir);
    for (const e of entries)
      for (const field of ["region", "operator"] as const) {
        const key = `${field}|${e.name}|${Buffer.from(e.keys.keysHash).toString("hex")}`;
        if (diversity?.[field] === false || e[field] !== undefined || warned.has(key)) continue;
        warned.add(key);
        log.warn(`a folder relay names no ${field}: the ${field} rule cannot keep it apart from other relays`, {
          relay: e.name,
          endpoint: `${e.host}:${e.port}`,
          fix: `add "${field}" to its descriptor in ${dir}, or set entry.mesh.diversity.${field} to false`,
        });
      }
    return entries;
  };
}

export interface EntryMeshSources {
  directory: () => DirectoryEntry[];
  close(): Promise<void>;
}

/** The entry's relays: its folder, and what the bootstrap nodes hand out, verified. */
export async function startEntrySources(
  config: Extract<NodeConfig, { role: "entry" }>,
  context: { connect: () => Promise<ChainHandle>; metrics?: NodeMetrics; log: Logger },
): Promise<EntryMeshSources> {
  const e = config.entry;
  const m = e.mesh;
  const folder = e.directory ? folderDirectory(e.directory, m?.diversity, context.log) : undefined;
  folder?.(); // fail at start-up on a bad descriptor, naming the file and field
  if (!m?.bootstrap) return { directory: folder as () => DirectoryEntry[], close: async () => {} };
  const registry = m.registry
    ? await startRegistry(await context.connect(), m.registryCheckpoint, context.log)
    : undefined;
  const sources = await startDescriptorSources({
    domain: domainOf(config.chain, "entry.mesh.bootstrap"),
    bootstrap: m.bootstrap,
    trust: trustList(m.trust),
    registry,
    onDropped: (reason, n) => context.metrics?.mesh("mesh_descriptors_dropped", { reason }, n),
    logger: context.log.child({ component: "descriptors" }),
  });
  context.log.info("relays from the bootstrap nodes", { relays: sources.entries().length, nodes: m.bootstrap.length });
  return {
    directory: () => merged(folder?.() ?? [], sources.entries()),
    close: async () => {
      await sources.close();
      await registry?.stop();
    },
  };
}

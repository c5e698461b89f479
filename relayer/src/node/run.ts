/**
 * Starts a node from its configuration (node/config.ts): a relay or exit (with, when paid, its
 * gate, accounting store and chain duties) or an entry (with, when it pays, its client key and
 * durable counts). Everything that can be checked before serving is checked first, with an error
 * that names the config key: the chain answers with the deployment's chain id, a paid relay is
 * registered with this signer, a payer's client key is authorised.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import {
  type Address,
  createPublicClient,
  createWalletClient,
  getAddress,
  http,
  parseGwei,
  parseUnits,
  type PublicClient,
  zeroAddress,
} from "viem";
import { getEip712Domain } from "viem/actions";
import { CELL_PRICE_BYTES, PaymentGate } from "../accounting/gate.ts";
import { PayerChannels } from "../accounting/payer.ts";
import { PayerStore } from "../accounting/payer-store.ts";
import { ClientKeys } from "../accounting/client-keys.ts";
import { bandwidthCreditDomain, epochRewardsDomain, signUptime } from "../accounting/receipts.ts";
import { AccountingStore } from "../accounting/store.ts";
import { bandwidthCreditAbi, epochRewardsAbi, relayerRegistryAbi } from "../chain/abi.ts";
import type { ProtocolAddresses } from "../chain/account.ts";
import { ChannelReader } from "../chain/reader.ts";
import { readDeployment } from "../cli/account.ts";
import { publicKeysOf } from "../crypto/keys.ts";
import { connectTarget, createExitPolicy } from "../exit/index.ts";
import type { Logger } from "../log.ts";
import { type ChainDuties, startChainDuties } from "./chain-duties.ts";
import { ConfigError, type NodeConfig, parseEndpoint } from "./config.ts";
import { descriptorOf, readDirectory } from "./directory.ts";
import { type EntryNode, startEntry } from "./entry.ts";
import { loadEvmKey } from "./evmkey.ts";
import { loadOrCreateKeys } from "./keyfile.ts";
import {
  createMetrics,
  type MetricsServer,
  metricsListen,
  type NodeMetrics,
  startMetricsServer,
} from "../metrics/index.ts";
import { type RelayNode, type RelayNodeOptions, startRelay } from "./relay.ts";
import { Knowledge } from "../mesh/knowledge.ts";
import {
  ChainEpochClock,
  probeIntervalFor,
  registryNodeOf,
  registryOperatorOf,
  UptimeInbox,
  type UptimePeer,
  UptimeProber,
} from "./uptime.ts";
import { prepareRelayMesh, startEntrySources } from "./run-mesh.ts";

export interface RunningNode {
  relay?: RelayNode;
  entry?: EntryNode;
  duties?: ChainDuties;
  /** The Prometheus endpoint, when `metrics` is configured. */
  metrics?: MetricsServer;
  close(): Promise<void>;
}

interface ChainContext {
  chainId: number;
  rpcUrl: string;
  contracts: ProtocolAddresses;
  client: PublicClient;
}

const MiB = 1n << 20n;

/** Reads the deployment and checks that its RPC answers with its chain id. */
async function connectChain(chain: NonNullable<NodeConfig["chain"]>): Promise<ChainContext> {
  let deployment;
  try {
    deployment = readDeployment(chain.deployment);
  } catch (error) {
    throw new ConfigError(`chain.deployment: ${(error as Error).message.replace(/^--deployment: /, "")}`);
  }
  const rpcUrl = chain.rpcUrl ?? deployment.rpcUrl;
  if (!rpcUrl) throw new ConfigError("chain.rpcUrl: required (the deployment file names no rpcUrl)");
  // Errors show the RPC's origin only: a provider's API key often sits in the path or the query.
  const shown = URL.canParse(rpcUrl) ? new URL(rpcUrl).origin : "(unparseable URL)";
  const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 2 }) }) as PublicClient;
  let chainId: number;
  try {
    chainId = await client.getChainId();
  } catch {
    throw new ConfigError(`chain.rpcUrl: ${shown} does not answer`);
  }
  if (chainId !== deployment.chainId)
    throw new ConfigError(
      `chain.rpcUrl: ${shown} is chain ${chainId}, the deployment is for chain ${deployment.chainId}`,
    );
  return { chainId, rpcUrl, contracts: deployment.contracts, client };
}

/**
 * The current epoch, read from the chain every `everyMs` and served synchronously (receipts are
 * dated with it). While the RPC is down the last value is served.
 */
async function epochClock(client: PublicClient, rewards: Address, everyMs: number, log: Logger) {
  const read = () => client.readContract({ address: rewards, abi: epochRewardsAbi, functionName: "currentEpoch" });
  let epoch = await read();
  const timer = setInterval(() => {
    read().then(
      (e) => (epoch = e),
      (error: Error) => log.debug("epoch read failed; keeping the last", { error: error.message.split("\n")[0] }),
    );
  }, everyMs);
  timer.unref();
  return { now: () => epoch, stop: () => clearInterval(timer) };
}

async function startRelayNode(
  config: Extract<NodeConfig, { role: "relay" | "exit" }>,
  log: Logger,
  hooks: NodeTestHooks = {},
) {
  const r = config.relay;
  const { keys, created } = loadOrCreateKeys(r.keys);
  const name = r.name ?? `relay-${keys.keysHash.toString("hex").slice(0, 8)}`;
  const rlog = log.child({ relay: name });
  if (created) rlog.info("new static keys written", { file: r.keys });
  const policy =
    config.role === "exit"
      ? createExitPolicy({
          allowPrivateTargets: config.exit.allowPrivateTargets,
          allowLoopbackTargets: config.exit.allowLoopbackTargets,
          logger: rlog,
        })
      : undefined;

  const metrics =
    config.metrics === undefined || config.metrics === "off"
      ? undefined
      : createMetrics({
          nodeId: name,
          role: config.role,
          circuitsOpen: () => node.core.circuits, // read at scrape time, once the relay runs
        });
  let gate: PaymentGate | undefined;
  let duties: ChainDuties | undefined;
  let store: AccountingStore | undefined;
  let operator: Address | undefined;
  let inbox: UptimeInbox | undefined;
  let clientKeys: ClientKeys | undefined;
  let startProber: (() => Promise<UptimeProber>) | undefined;
  let clock: ChainEpochClock | undefined;
  let knowledge: Knowledge | undefined;
  if (r.payments) {
    const p = r.payments;
    const chain = await connectChain(config.chain!);
    operator = getAddress(p.operator);
    // One signer sends submissions, lock landings and claims concurrently: viem's nonce manager
    // hands each its own nonce (two sends would otherwise race for the same one).
    const signer = loadEvmKey(p.signerKey, "relay.payments.signerKey", { nonceManager: true });
    const [registeredSigner, active] = await chain.client.readContract({
      address: chain.contracts.RelayerRegistry,
      abi: relayerRegistryAbi,
      functionName: "signerOf",
      args: [operator],
    });
    if (registeredSigner === zeroAddress)
      throw new ConfigError(
        `relay.payments.operator: ${operator} is not registered in RelayerRegistry (x0t register, with this signer)`,
      );
    if (registeredSigner.toLowerCase() !== signer.address.toLowerCase())
      throw new ConfigError(
        `relay.payments.signerKey: ${signer.address} is not the registered signer of ${operator} (${registeredSigner})`,
      );
    if (!active) rlog.warn("operator's stake is below the minimum: receipts cannot be submitted", { operator });
    mkdirSync(dirname(p.accounting), { recursive: true });
    store = new AccountingStore(p.accounting);
    const reader = new ChannelReader(chain.client, {
      credit: chain.contracts.BandwidthCredit,
      rewards: chain.contracts.EpochRewards,
      relayer: operator,
    });
    const receiptDomain = epochRewardsDomain(chain.chainId, chain.contracts.EpochRewards);
    // Receipts are verified against this domain here and recovered against the contract's own on
    // chain: they must be the same, or every receipt would pass here and fail there.
    const { domain: onChain } = await getEip712Domain(chain.client, { address: chain.contracts.EpochRewards });
    if (
      onChain.name !== receiptDomain.name ||
      onChain.version !== receiptDomain.version ||
      Number(onChain.chainId) !== receiptDomain.chainId ||
      onChain.verifyingContract.toLowerCase() !== receiptDomain.verifyingContract.toLowerCase()
    )
      throw new ConfigError(
        `chain.deployment: EpochRewards at ${chain.contracts.EpochRewards} signs as ${JSON.stringify({ ...onChain, chainId: Number(onChain.chainId) })}, not as this relayer expects`,
      );
    const relayer = operator;
    const slackCells = BigInt(p.receiptSlackCells);
    // Payers' public keys, learnt from their signed hellos: receipts are then verified natively.
    clientKeys = new ClientKeys(receiptDomain, relayer);
    const known = clientKeys;
    gate = new PaymentGate({
      chain: reader,
      store,
      verify: (epoch, receipt) => known.verifyReceipt(epoch, receipt),
      allowanceBytes: BigInt(p.allowanceMiB) * MiB,
      slackCells,
      slackBytes: slackCells * CELL_PRICE_BYTES,
    });
    const wallet = createWalletClient({ account: signer, transport: http(chain.rpcUrl, { retryCount: 2 }) });
    const epochs = await ChainEpochClock.start(chain.client, chain.contracts.EpochRewards, 10_000, rlog);
    clock = epochs;
    inbox = new UptimeInbox({
      store,
      relayer,
      domain: receiptDomain,
      // 10 s of clock skew between relays tolerated at an epoch's end (the chain judges anyway).
      currentEpoch: () => epochs.epochOf(Date.now() + 10_000),
      windowEpochs: () => epochs.window + 1, // the chain decides at submission; the clock above runs 10 s early
      operatorOf: registryOperatorOf(chain.client, chain.contracts.RelayerRegistry),
      logger: rlog,
    });
    if (p.uptime) {
      const u = p.uptime;
      const peersDir = u.peers;
      knowledge = new Knowledge(u.knowledge ?? p.accounting.replace(/(\.sqlite)?$/, ".knowledge.sqlite"));
      const known = knowledge;
      const probeIntervalMs = u.probeIntervalMs ?? probeIntervalFor(epochs.length);
      const nodeOf = registryNodeOf(chain.client, chain.contracts.RelayerRegistry);
      startProber = async () => {
        const prober = new UptimeProber({
          self: relayer,
          peers: () => registeredPeers(nodeOf, peersDir, rlog),
          knowledge: known,
          clock: epochs,
          probeIntervalMs,
          sign: (fields) => signUptime(signer, receiptDomain, fields),
          windowEpochs: () => epochs.window,
          repushMs: Math.min(300_000, Math.max(10_000, (epochs.length * 1000) / 4)),
          logger: rlog,
        });
        await prober.start();
        rlog.info("measuring other relays' uptime", { peers: peersDir, probeIntervalMs });
        return prober;
      };
    }
    duties = startChainDuties({
      store,
      clients: {
        public: chain.client,
        wallet: wallet as never,
        rewards: chain.contracts.EpochRewards,
        credit: chain.contracts.BandwidthCredit,
        bumps: {
          afterBlocks: p.bumpAfterBlocks,
          bumpPercent: p.bumpPercent,
          ...(p.maxFeeGwei ? { maxFeePerGas: parseGwei(p.maxFeeGwei) } : {}),
        },
        logger: rlog,
      },
      relayer: operator,
      reader,
      creditDomain: bandwidthCreditDomain(chain.chainId, chain.contracts.BandwidthCredit),
      minLockBytes: BigInt(p.minLockMiB) * MiB,
      settleEveryMs: p.settleEverySeconds * 1000,
      claimAboveWei: p.claimAboveX0T === null ? null : parseUnits(p.claimAboveX0T, 18),
      logger: rlog,
      metrics,
    });
    rlog.info("payments on", { operator, signer: signer.address, accounting: p.accounting });
  }

  const mesh = await prepareRelayMesh(config, {
    name,
    keys,
    connect: () => connectChain(config.chain!),
    metrics,
    log: rlog,
  });
  const { host, port } = parseEndpoint("relay.listen", r.listen);
  const node = await startRelay({
    host,
    port,
    keys,
    logger: rlog,
    limits: r.createsPerSecond === undefined ? undefined : { createsPerSecond: r.createsPerSecond },
    openTarget: policy ? (target, signal) => connectTarget(target, policy, { signal, logger: rlog }) : undefined,
    payments: gate,
    onLockRequest: duties ? (lock) => duties.requestLock(lock) : undefined,
    onUptime: inbox ? (attestation) => void inbox.receive(attestation) : undefined,
    checkPayHello: clientKeys ? (binding, hello) => clientKeys.checkHello(binding, hello) : undefined,
    metrics,
    isKnownRelay: mesh.isKnownRelay,
    tamperForward: hooks.tamperForward,
  });
  const prober = await startProber?.();
  await mesh.start({ host: node.host, port: node.port });
  const server = metrics ? await serveMetrics(metrics, config.metrics!, rlog) : undefined;
  if (r.descriptorOut) {
    mkdirSync(dirname(r.descriptorOut), { recursive: true });
    const descriptor = descriptorOf({
      name,
      host: r.advertiseHost ?? node.host,
      port: node.port,
      exit: config.role === "exit",
      region: r.region,
      operator,
      keys: publicKeysOf(keys),
    });
    writeFileSync(r.descriptorOut, JSON.stringify(descriptor, null, 2) + "\n");
  }
  rlog.info("relay ready", {
    port: node.port,
    keysHash: `0x${keys.keysHash.toString("hex")}`,
    exit: config.role === "exit",
    paid: gate !== undefined,
  });
  return {
    relay: node,
    duties,
    metrics: server,
    close: async () => {
      prober?.stop();
      clock?.stop();
      await node.close();
      await mesh.close();
      await duties?.close();
      await server?.close();
      store?.close();
      knowledge?.close();
    },
  } satisfies RunningNode;
}

async function startEntryNode(config: Extract<NodeConfig, { role: "entry" }>, log: Logger): Promise<RunningNode> {
  const e = config.entry;
  let payer: PayerChannels | undefined;
  let stop = () => {};
  let payerStore: PayerStore | undefined;
  if (e.payer) {
    const p = e.payer;
    const chain = await connectChain(config.chain!);
    const key = loadEvmKey(p.clientKey, "entry.payer.clientKey");
    const [account, revokedAfter] = await chain.client.readContract({
      address: chain.contracts.BandwidthCredit,
      abi: bandwidthCreditAbi,
      functionName: "clientKeys",
      args: [key.address],
    });
    if (account === zeroAddress)
      throw new ConfigError(
        `entry.payer.clientKey: ${key.address} is not authorised (x0t key authorize --key-file ${p.clientKey})`,
      );
    const clock = await epochClock(chain.client, chain.contracts.EpochRewards, 2_000, log);
    if (revokedAfter < clock.now())
      throw new ConfigError(`entry.payer.clientKey: ${key.address} was revoked after epoch ${revokedAfter}`);
    stop = clock.stop;
    mkdirSync(dirname(p.state), { recursive: true });
    payerStore = new PayerStore(p.state);
    payer = new PayerChannels({
      key,
      receiptDomain: epochRewardsDomain(chain.chainId, chain.contracts.EpochRewards),
      creditDomain: bandwidthCreditDomain(chain.chainId, chain.contracts.BandwidthCredit),
      epoch: clock.now,
      everyCells: BigInt(p.receiptEveryCells),
      everyMs: p.receiptEverySeconds * 1000,
      store: payerStore,
      locks: { bytes: BigInt(p.lockMiB) * MiB, epochs: BigInt(p.lockEpochs) },
    });
    log.info("paying with client key", { key: key.address, account });
  }
  const { host: socksHost, port: socksPort } = parseEndpoint("entry.socks", e.socks);
  const metrics =
    config.metrics === undefined || config.metrics === "off"
      ? undefined
      : createMetrics({ nodeId: "entry", role: "entry" });
  const sources = await startEntrySources(config, { connect: () => connectChain(config.chain!), metrics, log });
  const m = e.mesh;
  const node = await startEntry({
    socksHost,
    socksPort,
    hops: e.hops,
    directory: sources.directory,
    payer,
    metrics,
    knowledge: m?.knowledge,
    diversity: m?.diversity,
    standbys: m?.standbys,
    beaconIntervalMs: m?.beaconIntervalMs,
    idleBeaconIntervalMs: m?.idleBeaconIntervalMs,
    logger: log.child({ entry: "socks" }),
  });
  const server = metrics ? await serveMetrics(metrics, config.metrics!, log) : undefined;
  return {
    entry: node,
    metrics: server,
    close: async () => {
      stop();
      await node.close();
      await sources.close();
      await server?.close();
      payerStore?.close();
    },
  };
}

/**
 * The relays in `dir` that the registry vouches for: a descriptor names its operator and carries
 * its static keys (the registry holds only their hash); the endpoint is the registry's. Descriptors
 * whose keys do not match the record, or whose operator is not registered, are skipped with a reason.
 */
async function registeredPeers(
  nodeOf: ReturnType<typeof registryNodeOf>,
  dir: string,
  log: Logger,
): Promise<UptimePeer[]> {
  const peers: UptimePeer[] = [];
  for (const entry of readDirectory(dir)) {
    if (!entry.operator) continue;
    const node = await nodeOf(getAddress(entry.operator));
    const why =
      node.registeredAt === 0
        ? "not registered"
        : node.keysHash.toLowerCase() !== `0x${Buffer.from(entry.keys.keysHash).toString("hex")}`
          ? "keys differ from the registry record"
          : undefined;
    if (why) {
      log.debug("uptime peer skipped", { operator: entry.operator, name: entry.name, why });
      continue;
    }
    try {
      const { host, port } = parseEndpoint("registry endpoint", node.endpoint);
      peers.push({ operator: getAddress(entry.operator), host, port, keys: entry.keys });
    } catch {
      log.debug("uptime peer skipped", { operator: entry.operator, why: `unusable endpoint ${node.endpoint}` });
    }
  }
  return peers;
}

/**
 * Serves `metrics` where the config says ("port" means 127.0.0.1:port). Metrics are secondary: a
 * port that cannot be bound is an error in the log, not a node that does not start.
 */
async function serveMetrics(metrics: NodeMetrics, where: string, log: Logger): Promise<MetricsServer | undefined> {
  const listen = metricsListen(where, "metrics")!;
  try {
    const server = await startMetricsServer(metrics.registry, listen);
    log.info("metrics served", { url: server.url });
    return server;
  } catch (error) {
    log.error("metrics not served", { listen: `${listen.host}:${listen.port}`, error: (error as Error).message });
    return undefined;
  }
}

/**
 * What a test harness may inject into a node that no config can: the chaos harness's hostile relay
 * (bench/chaos-relay.ts) corrupts or drops the cells it passes on.
 */
export interface NodeTestHooks {
  tamperForward?: RelayNodeOptions["tamperForward"];
}

export async function startNode(config: NodeConfig, log: Logger, hooks?: NodeTestHooks): Promise<RunningNode> {
  return config.role === "entry" ? startEntryNode(config, log) : startRelayNode(config, log, hooks);
}

/**
 * The on-chain trust anchor: every operator's node record from the RelayerRegistry, kept current by
 * following the registry's events from a persisted checkpoint.
 *
 * A first start lists every record with `nodesPage` at the head block, then follows events from
 * there; a restart resumes from the checkpoint file (block + records), so it knows who was staked
 * before it has reached the RPC. Events only say *which* operators changed: their records are read
 * again from the latest state (getNode, minStake), so a reorg or a missed event is repaired by the
 * next read instead of being replayed. When the RPC fails, the last records keep answering (marked
 * stale in `status()`) and the follower retries with bounded exponential backoff.
 */
import { renameSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { type Address, getAddress, hexToString, type PublicClient, parseEventLogs, zeroAddress } from "viem";
import { relayerRegistryAbi } from "../chain/abi.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import type { Lookup, NodeRecord, TrustAnchor } from "./verify.ts";

interface StoredRecord {
  operator: Address;
  signer: Address;
  keysHash: `0x${string}`;
  endpoint: string;
  region: string;
  /** Bonded stake, wei, decimal. */
  stake: string;
}

interface Checkpoint {
  version: 1;
  chainId: number;
  registry: Address;
  /** Every event up to and including this block has been applied. */
  block: string;
  minStake: string;
  records: StoredRecord[];
}

export interface RegistrySourceOptions {
  client: PublicClient;
  registry: Address;
  /** Where the checkpoint is kept (JSON, replaced atomically); none: memory only. */
  checkpointPath?: string;
  /** Blocks behind the head treated as final (default 0; a few on an L2 with reorgs). */
  confirmations?: number;
  /** Largest eth_getLogs range (default 2,000 blocks). */
  maxBlockRange?: number;
  /** Follow interval when caught up (default 2 s) and backoff after failures (default 0.5 s doubling to 30 s). */
  pollMs?: number;
  backoffMs?: { initial: number; max: number };
  /** Most operators kept (a bound on memory and on the checkpoint; default 100,000). */
  maxRecords?: number;
  logger?: Logger;
  sleep?: (ms: number) => Promise<void>;
}

export interface RegistrySourceStatus {
  /** Last block whose events are applied (undefined: never synced). */
  block: bigint | undefined;
  /** Consecutive failed syncs since the last success. */
  failures: number;
  lastError: string | undefined;
  /** True while the RPC fails: lookups answer from the last records read. */
  stale: boolean;
  records: number;
}

const PAGE = 100n;
/** Events that change a node record or whether it is active. */
const TOUCHING = new Set([
  "NodeRegistered",
  "NodeUpdated",
  "StakeAdded",
  "Unbonded",
  "Withdrawn",
  "NodeDeregistered",
  "Slashed",
]);

export class RegistrySource implements TrustAnchor {
  readonly kind = "registry" as const;
  readonly #client: PublicClient;
  readonly #registry: Address;
  readonly #path: string | undefined;
  readonly #confirmations: bigint;
  readonly #range: bigint;
  readonly #pollMs: number;
  readonly #backoff: { initial: number; max: number };
  readonly #maxRecords: number;
  readonly #log: Logger;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #records = new Map<string, StoredRecord>();
  #minStake = 0n;
  #block: bigint | undefined;
  #chainId: number | undefined;
  #failures = 0;
  #lastError: string | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(options: RegistrySourceOptions) {
    this.#client = options.client;
    this.#registry = getAddress(options.registry);
    this.#path = options.checkpointPath;
    this.#confirmations = BigInt(options.confirmations ?? 0);
    this.#range = BigInt(options.maxBlockRange ?? 2_000);
    this.#pollMs = options.pollMs ?? 2_000;
    this.#backoff = options.backoffMs ?? { initial: 500, max: 30_000 };
    this.#maxRecords = options.maxRecords ?? 100_000;
    this.#log = options.logger ?? silentLogger;
    this.#sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    if (this.#path && existsSync(this.#path)) this.#restore(this.#path);
  }

  /** What the registry says of `operator` (from the last sync; "unavailable" before the first). */
  lookup(operator: Address): Lookup {
    if (this.#block === undefined) return { kind: "unavailable" };
    const r = this.#records.get(operator.toLowerCase());
    if (!r || r.signer === zeroAddress) return { kind: "none" };
    return { kind: "record", record: this.#toRecord(r) };
  }

  /** Every record with a node (active or not). */
  records(): NodeRecord[] {
    return [...this.#records.values()].filter((r) => r.signer !== zeroAddress).map((r) => this.#toRecord(r));
  }

  status(): RegistrySourceStatus {
    return {
      block: this.#block,
      failures: this.#failures,
      lastError: this.#lastError,
      stale: this.#failures > 0,
      records: this.#records.size,
    };
  }

  /**
   * Brings the records up to the head (minus confirmations), at most `maxSteps` getLogs ranges.
   * Throws on an RPC failure (the records and checkpoint stay as they were before the failing range).
   */
  async syncOnce(maxSteps = 1_000): Promise<{ from: bigint; to: bigint; events: number }> {
    const chainId = await this.#client.getChainId();
    if (this.#chainId !== undefined && this.#chainId !== chainId)
      throw new Error(`checkpoint is for chain ${this.#chainId}, the RPC serves chain ${chainId}`);
    this.#chainId = chainId;
    // cacheTime 0: viem caches the block number for its polling interval, which would hide new blocks.
    const head = (await this.#client.getBlockNumber({ cacheTime: 0 })) - this.#confirmations;
    const start = this.#block;
    if (start === undefined) {
      await this.#listAll(head);
      this.#save();
      return { from: head, to: head, events: 0 };
    }
    let events = 0;
    let block = start;
    for (let step = 0; step < maxSteps && block < head; step++) {
      const to = block + this.#range < head ? block + this.#range : head;
      const logs = await this.#client.getLogs({ address: this.#registry, fromBlock: block + 1n, toBlock: to });
      const parsed = parseEventLogs({ abi: relayerRegistryAbi, logs, strict: false });
      const touched = new Set<Address>();
      let minStakeChanged = false;
      for (const log of parsed) {
        if (log.eventName === "MinStakeChanged") minStakeChanged = true;
        else if (TOUCHING.has(log.eventName)) {
          const operator = (log.args as { operator?: Address }).operator;
          if (operator) touched.add(operator);
        }
      }
      if (minStakeChanged) this.#minStake = await this.#readMinStake();
      for (const operator of touched) await this.#refresh(operator);
      events += parsed.length;
      block = to;
      this.#block = block;
      this.#save();
    }
    return { from: start + 1n, to: block, events };
  }

  /** Follows the chain until `stop()`: polls every `pollMs`, backs off on failures (bounded). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) {
        let delay = this.#pollMs;
        try {
          const r = await this.syncOnce();
          if (this.#failures > 0) this.#log.info("registry follower recovered", { failures: this.#failures });
          this.#failures = 0;
          this.#lastError = undefined;
          if (r.events > 0) this.#log.info("registry events applied", { to: r.to, events: r.events });
        } catch (error) {
          this.#failures++;
          this.#lastError = (error as Error).message.split("\n")[0];
          delay = Math.min(this.#backoff.max, this.#backoff.initial * 2 ** Math.min(this.#failures - 1, 20));
          this.#log.warn("registry follower: RPC failed, serving the last records", {
            failures: this.#failures,
            retryMs: delay,
            error: this.#lastError,
          });
        }
        if (!this.#running) break;
        await Promise.race([this.#sleep(delay), new Promise<void>((r) => (this.#wake = r))]);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  #toRecord(r: StoredRecord): NodeRecord {
    return {
      operator: r.operator,
      signer: r.signer,
      keysHash: r.keysHash,
      endpoint: r.endpoint,
      region: r.region,
      active: r.signer !== zeroAddress && BigInt(r.stake) >= this.#minStake,
      pinned: true, // the registry names one signer per operator: authoritative
    };
  }

  async #readMinStake(): Promise<bigint> {
    return this.#client.readContract({ address: this.#registry, abi: relayerRegistryAbi, functionName: "minStake" });
  }

  async #listAll(head: bigint): Promise<void> {
    const [count, minStake] = await Promise.all([
      this.#client.readContract({
        address: this.#registry,
        abi: relayerRegistryAbi,
        functionName: "nodeCount",
        blockNumber: head,
      }),
      this.#client.readContract({
        address: this.#registry,
        abi: relayerRegistryAbi,
        functionName: "minStake",
        blockNumber: head,
      }),
    ]);
    const records = new Map<string, StoredRecord>();
    const limit = BigInt(this.#maxRecords) < count ? BigInt(this.#maxRecords) : count;
    for (let offset = 0n; offset < limit; offset += PAGE) {
      const [operators, nodes] = await this.#client.readContract({
        address: this.#registry,
        abi: relayerRegistryAbi,
        functionName: "nodesPage",
        args: [offset, PAGE],
        blockNumber: head,
      });
      operators.forEach((operator, i) => {
        const n = nodes[i];
        if (n) records.set(operator.toLowerCase(), stored(operator, n));
      });
    }
    this.#records.clear();
    for (const [k, v] of records) this.#records.set(k, v);
    this.#minStake = minStake;
    this.#block = head;
    this.#log.info("registry listed", { block: head, operators: records.size });
  }

  async #refresh(operator: Address): Promise<void> {
    const node = await this.#client.readContract({
      address: this.#registry,
      abi: relayerRegistryAbi,
      functionName: "getNode",
      args: [operator],
    });
    const key = operator.toLowerCase();
    if (!this.#records.has(key) && this.#records.size >= this.#maxRecords) {
      this.#log.warn("registry follower: record limit reached, operator ignored", { operator });
      return;
    }
    this.#records.set(key, stored(operator, node));
  }

  #save(): void {
    if (!this.#path || this.#block === undefined || this.#chainId === undefined) return;
    const checkpoint: Checkpoint = {
      version: 1,
      chainId: this.#chainId,
      registry: this.#registry,
      block: this.#block.toString(),
      minStake: this.#minStake.toString(),
      records: [...this.#records.values()],
    };
    const tmp = `${this.#path}.tmp`;
    writeFileSync(tmp, JSON.stringify(checkpoint) + "\n");
    renameSync(tmp, this.#path);
  }

  #restore(path: string): void {
    const c = JSON.parse(readFileSync(path, "utf8")) as Partial<Checkpoint>;
    if (c.version !== 1 || typeof c.block !== "string" || !Array.isArray(c.records))
      throw new Error(`${path}: not a registry checkpoint (version 1)`);
    if (getAddress(c.registry ?? zeroAddress) !== this.#registry)
      throw new Error(`${path}: checkpoint of registry ${c.registry}, not ${this.#registry}`);
    this.#chainId = c.chainId;
    this.#block = BigInt(c.block);
    this.#minStake = BigInt(c.minStake ?? "0");
    for (const r of c.records.slice(0, this.#maxRecords)) this.#records.set(r.operator.toLowerCase(), r);
  }
}

function stored(
  operator: Address,
  n: { signer: Address; region: `0x${string}`; keysHash: `0x${string}`; stake: bigint; endpoint: string },
): StoredRecord {
  return {
    operator: getAddress(operator),
    signer: n.signer,
    keysHash: n.keysHash.toLowerCase() as `0x${string}`,
    endpoint: n.endpoint,
    region: n.region === "0x0000" ? "" : hexToString(n.region, { size: 2 }),
    stake: n.stake.toString(),
  };
}

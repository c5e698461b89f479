/**
 * Uptime attestations between relays (docs/settlement.md, "Uptime attestations"; the contract side
 * is EpochRewards.submitUptime):
 *
 * - **UptimeProber** (the attester): keeps one link to every other registered relay it knows and
 *   sends a PING on it every `probeIntervalMs` (a link-level cell, answered by the relay process
 *   itself, so a frozen or dead relay does not answer). The mesh's Monitor schedules the probes and
 *   the mesh's Knowledge counts them per reward epoch, with a SHA-256 chain over every outcome:
 *   exactly the `probes`, `answered` and `measurements` an `Uptime` attestation states. Once an
 *   epoch has ended (and its last probes had time to come back), each relay measured up for
 *   >= 99% of >= 100 probes is sent this node's signed attestation on the same link (UPTIME cell).
 * - **UptimeInbox** (the attested relay): checks what arrives — for this relay, an ended epoch still
 *   open for submission, the contract's minimum figures, a valid signature by a registered relay's
 *   signer other than its own — and keeps it in the AccountingStore; chain/uptime.ts submits them.
 *
 * The probe interval follows the epoch: 120 probes per epoch (30 s for an hour), so that an
 * attester that ran the whole epoch clears the contract's 100 with room for a restart.
 */
import { type Address, getAddress, type PublicClient, zeroAddress } from "viem";
import { type Eip712Domain, recoverUptimeSigner, type SignedAttestation } from "../accounting/receipts.ts";
import type { AccountingStore } from "../accounting/store.ts";
import { epochRewardsAbi, relayerRegistryAbi } from "../chain/abi.ts";
import type { RelayPublicKeys } from "../crypto/keys.ts";
import { Link } from "../link/link.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import type { Knowledge, UptimeFigures } from "../mesh/knowledge.ts";
import { Monitor } from "../mesh/monitor.ts";
import { CellCommand } from "../wire/cell.ts";
import { encodeUptime, type UptimeAttestation } from "../wire/uptime.ts";

/** EpochRewards.MIN_PROBES and MIN_UPTIME_BPS: what an attestation must state to count. */
export const MIN_PROBES = 100;
export const MIN_UPTIME_BPS = 9_900;
/** Probes an attester aims to send per epoch. */
export const PROBES_PER_EPOCH = 120;

/** Whether `figures` clear the contract's minimum (>= 100 probes, >= 99% answered). */
export function qualifies(figures: Pick<UptimeFigures, "probes" | "answered">): boolean {
  return (
    figures.probes >= MIN_PROBES &&
    figures.answered <= figures.probes &&
    figures.answered * 10_000 >= figures.probes * MIN_UPTIME_BPS
  );
}

/** The probe interval for epochs of `epochSeconds`: PROBES_PER_EPOCH per epoch, within 250 ms..30 s. */
export function probeIntervalFor(epochSeconds: number): number {
  return Math.min(30_000, Math.max(250, Math.floor((epochSeconds * 1000) / PROBES_PER_EPOCH)));
}

/** Which reward epoch a moment (ms) falls in. */
export interface EpochClock {
  epochOf(ms: number): bigint;
}

/**
 * The reward epochs of EpochRewards: the current epoch's start and length, and how far the chain's
 * clock (its latest block) is from this one, are read from the chain (again every `everyMs`; the
 * last values are kept while the RPC is down).
 */
export class ChainEpochClock implements EpochClock {
  #epoch = 0n;
  #startsAt = 0;
  #length = 3600;
  #window = 1;
  /** Chain time minus local time, seconds. */
  #offset = 0;
  #timer: NodeJS.Timeout | undefined;

  readonly #client: PublicClient;
  readonly #rewards: Address;

  private constructor(client: PublicClient, rewards: Address) {
    this.#client = client;
    this.#rewards = rewards;
  }

  static async start(client: PublicClient, rewards: Address, everyMs = 10_000, log: Logger = silentLogger) {
    const clock = new ChainEpochClock(client, rewards);
    await clock.refresh();
    clock.#timer = setInterval(() => {
      clock
        .refresh()
        .catch((error: Error) => log.debug("epoch clock read failed; keeping the last", { error: error.message }));
    }, everyMs);
    clock.#timer.unref();
    return clock;
  }

  async refresh(): Promise<void> {
    const epoch = await this.#client.readContract({
      address: this.#rewards,
      abi: epochRewardsAbi,
      functionName: "currentEpoch",
    });
    const [era, startsAt] = await this.#client.readContract({
      address: this.#rewards,
      abi: epochRewardsAbi,
      functionName: "epochInfo",
      args: [epoch],
    });
    // The chain's clock is its latest block's: it can run ahead of this one (a local chain mints a
    // block per transaction, each a second later than the last) or lag by a block interval.
    const block = await this.#client.getBlock();
    this.#offset = Number(block.timestamp) - Date.now() / 1000;
    this.#epoch = epoch;
    this.#startsAt = Number(startsAt);
    this.#length = Number(era.length);
    this.#window = era.params.submissionWindow;
  }

  /** The epoch of local time `ms`, on the chain's clock. */
  epochOf(ms: number): bigint {
    return this.#epoch + BigInt(Math.floor((ms / 1000 + this.#offset - this.#startsAt) / this.#length));
  }

  /** Seconds per epoch (of the current era). */
  get length(): number {
    return this.#length;
  }

  /** Epochs after its end during which an epoch takes submissions. */
  get window(): number {
    return this.#window;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** A relay to measure: its operator (the attestation names it) and where its link listener is. */
export interface UptimePeer {
  operator: Address;
  host: string;
  port: number;
  keys: RelayPublicKeys;
}

export interface UptimeProberOptions {
  /** This relay's operator: never probed. */
  self: Address;
  /** The relays to measure, asked again every `refreshMs`. */
  peers: () => Promise<UptimePeer[]> | UptimePeer[];
  knowledge: Knowledge;
  clock: EpochClock;
  probeIntervalMs: number;
  /** Signs an attestation with this node's signer (domain: EpochRewards). */
  sign: (fields: {
    relayer: Address;
    epoch: bigint;
    probes: number;
    answered: number;
    measurements: `0x${string}`;
  }) => Promise<SignedAttestation>;
  /** A probe unanswered this long is lost (default: 5 s, at most 4 probe intervals, at least 200 ms). */
  lostAfterMs?: number;
  /** Ended epochs still pushed to relays that (re)connect (default 1: the submission window). */
  windowEpochs?: () => number;
  /**
   * Pushes are repeated this often while an epoch's window is open (default 60 s): a push is not
   * acknowledged, and the receiver may have been busy, restarting, or behind by a clock skew.
   */
  repushMs?: number;
  refreshMs?: number;
  connect?: (peer: UptimePeer) => Promise<Link>;
  logger?: Logger;
}

interface PeerState {
  peer: UptimePeer;
  link: Link | undefined;
  connecting: boolean;
  /** Probes sent while the link was being opened. */
  waiting: number[];
  /** Epochs already pushed on the current link. */
  pushed: Set<bigint>;
}

const MAX_WAITING = 32;

export class UptimeProber {
  readonly monitor: Monitor;
  readonly #o: UptimeProberOptions;
  readonly #log: Logger;
  readonly #lostAfterMs: number;
  readonly #peers = new Map<string, PeerState>();
  readonly #signed = new Map<string, Promise<UptimeAttestation>>();
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;

  constructor(options: UptimeProberOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#lostAfterMs = options.lostAfterMs ?? Math.max(200, Math.min(5_000, options.probeIntervalMs * 4));
    this.monitor = new Monitor({
      now: Date.now,
      knowledge: options.knowledge,
      epochOf: (ms) => options.clock.epochOf(ms),
      probeIntervalMs: options.probeIntervalMs,
      lostAfterMs: this.#lostAfterMs,
      effects: {
        sendBeacon: () => {},
        sendProbe: (node, seq) => this.#probe(node, seq),
      },
      logger: this.#log,
    });
  }

  /** Starts probing, refreshing the peer list, and pushing attestations of ended epochs. */
  async start(): Promise<void> {
    await this.refresh();
    const tickMs = Math.max(10, Math.min(50, Math.floor(this.#o.probeIntervalMs / 4)));
    this.#timers = [
      setInterval(() => this.monitor.tick(), tickMs),
      setInterval(() => void this.refresh(), this.#o.refreshMs ?? 10_000),
      setInterval(() => void this.pushDue(), Math.min(1_000, this.#o.probeIntervalMs * 2)),
      setInterval(() => {
        for (const state of this.#peers.values()) state.pushed.clear();
      }, this.#o.repushMs ?? 60_000),
    ];
    for (const t of this.#timers) t.unref();
  }

  /** Reads the peer list again: new relays are probed, gone ones forgotten. */
  async refresh(): Promise<void> {
    let peers: UptimePeer[];
    try {
      peers = await this.#o.peers();
    } catch (error) {
      this.#log.warn("uptime peers not refreshed", { error: (error as Error).message });
      return;
    }
    const self = this.#o.self.toLowerCase();
    const wanted = new Map<string, UptimePeer>();
    for (const p of peers) if (p.operator.toLowerCase() !== self) wanted.set(p.operator.toLowerCase(), p);
    for (const [id, state] of this.#peers)
      if (!wanted.has(id)) {
        state.link?.close();
        this.#peers.delete(id);
      }
    for (const [id, peer] of wanted) {
      const state = this.#peers.get(id);
      if (!state) this.#peers.set(id, { peer, link: undefined, connecting: false, waiting: [], pushed: new Set() });
      else if (state.peer.host !== peer.host || state.peer.port !== peer.port) {
        state.peer = peer; // moved: the next probe connects to the new endpoint
        state.link?.close();
      }
    }
    this.monitor.setKnownNodes([...wanted.keys()]);
  }

  #probe(node: string, seq: number): void {
    const state = this.#peers.get(node);
    if (!state || this.#stopped) return this.monitor.probeFailed(node, seq);
    if (state.link && !state.link.isClosed) {
      this.#ping(state.link, seq);
      return;
    }
    if (state.waiting.length < MAX_WAITING) state.waiting.push(seq);
    if (state.connecting) return;
    state.connecting = true;
    const connect = this.#o.connect ?? ((p: UptimePeer) => Link.connect(p.host, p.port, p.keys));
    connect(state.peer)
      .then((link) => {
        if (this.#stopped || this.#peers.get(node) !== state) return link.close();
        state.link = link;
        state.pushed = new Set();
        link.setHandler({
          onCell: (cell) => {
            // Only PONGs are expected back; anything else on a probe link is ignored.
            if (this.#stopped) return;
            if (cell.command === CellCommand.pong && cell.circuitId === 0 && cell.body.length === 4)
              this.monitor.probeAnswered(node, cell.body.readUInt32BE(0));
          },
          onClose: () => {
            if (state.link === link) state.link = undefined;
          },
        });
        for (const s of state.waiting.splice(0)) this.#ping(link, s);
        void this.pushDue();
      })
      .catch((error: Error) => {
        if (this.#stopped) return; // the knowledge base may be closed already
        this.#log.debug("uptime probe link failed", { relay: node, error: error.message });
        for (const s of state.waiting.splice(0)) this.monitor.probeFailed(node, s);
      })
      .finally(() => (state.connecting = false));
  }

  #ping(link: Link, seq: number): void {
    const body = Buffer.allocUnsafe(4);
    body.writeUInt32BE(seq >>> 0, 0);
    link.send(0, CellCommand.ping, [body]);
  }

  /** The last ended epoch whose probes have all come back or been given up on. */
  lastClosedEpoch(now = Date.now()): bigint {
    return this.#o.clock.epochOf(now - this.#lostAfterMs - 250) - 1n;
  }

  /** What this node would attest of `operator` in `epoch`. */
  figures(operator: Address, epoch: bigint): UptimeFigures {
    return this.#o.knowledge.uptime(operator.toLowerCase(), epoch);
  }

  /** Sends each connected relay this node's attestations of the ended epochs it has not sent on that link. */
  async pushDue(): Promise<number> {
    if (this.#stopped) return 0;
    const last = this.lastClosedEpoch();
    if (last < 0n) return 0;
    const window = BigInt(Math.max(1, this.#o.windowEpochs?.() ?? 1));
    const first = last - window + 1n > 0n ? last - window + 1n : 0n;
    for (const key of this.#signed.keys()) if (BigInt(key.split(":")[1]!) < first) this.#signed.delete(key);
    let sent = 0;
    for (const [node, state] of this.#peers) {
      const link = state.link;
      if (!link || link.isClosed) continue;
      for (let epoch = first; epoch <= last; epoch++) {
        if (state.pushed.has(epoch)) continue;
        state.pushed.add(epoch);
        const figures = this.figures(state.peer.operator, epoch);
        if (!qualifies(figures)) {
          if (figures.probes > 0)
            this.#log.info("uptime not attested", {
              relayer: state.peer.operator,
              epoch,
              probes: figures.probes,
              answered: figures.answered,
            });
          continue;
        }
        const id = `${node}:${epoch}`;
        let signed = this.#signed.get(id);
        if (!signed) {
          signed = this.#o
            .sign({ relayer: state.peer.operator, epoch, ...figures })
            .then((s) => ({ ...s, relayer: state.peer.operator, epoch }));
          this.#signed.set(id, signed);
        }
        try {
          const attestation = await signed;
          if (link.isClosed) continue;
          link.send(0, CellCommand.uptime, [encodeUptime(attestation)]);
          sent++;
          this.#log.info("uptime attested", {
            relayer: state.peer.operator,
            epoch,
            probes: figures.probes,
            answered: figures.answered,
          });
        } catch (error) {
          this.#signed.delete(id);
          state.pushed.delete(epoch);
          this.#log.warn("uptime attestation not signed", { error: (error as Error).message });
        }
      }
    }
    if (last > window + 1n) this.#o.knowledge.pruneEpochsBefore(last - window - 1n);
    return sent;
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    for (const state of this.#peers.values()) state.link?.close();
  }
}

export interface UptimeInboxOptions {
  store: AccountingStore;
  /** This relay's operator: attestations must name it. */
  relayer: Address;
  /** EpochRewards' EIP-712 domain. */
  domain: Eip712Domain;
  /** The current epoch and the submission window (epochs). */
  currentEpoch: () => bigint;
  windowEpochs: () => number;
  /** The operator a signer key is registered for (RelayerRegistry.operatorOf), zero if none. */
  operatorOf: (signer: Address) => Promise<Address>;
  logger?: Logger;
}

/** Checks reading at most this many attestations at once; more wait for none and are dropped. */
const MAX_IN_FLIGHT = 16;

export class UptimeInbox {
  readonly #o: UptimeInboxOptions;
  readonly #log: Logger;
  #inFlight = 0;
  /** Counts by outcome, for tests and logs. */
  readonly counts = { kept: 0, duplicate: 0, refused: 0, busy: 0 };

  constructor(options: UptimeInboxOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
  }

  /** Checks `a` and keeps it if it can earn this relay the bonus; resolves with why not, or "kept". Never throws. */
  async receive(a: UptimeAttestation): Promise<string> {
    if (this.#inFlight >= MAX_IN_FLIGHT) {
      this.counts.busy++;
      return "busy";
    }
    this.#inFlight++;
    try {
      const why = await this.#check(a);
      if (why === "duplicate") {
        this.counts.duplicate++;
        return why;
      }
      if (why !== undefined) {
        this.counts.refused++;
        this.#log.info("uptime attestation refused", { signer: a.signer, epoch: a.epoch, why });
        return why;
      }
      if (!this.#o.store.saveAttestation(a.epoch, a)) {
        this.counts.duplicate++;
        return "duplicate";
      }
      this.counts.kept++;
      this.#log.info("uptime attestation kept", {
        signer: a.signer,
        epoch: a.epoch,
        probes: a.probes,
        answered: a.answered,
      });
      return "kept";
    } catch (error) {
      this.counts.refused++;
      this.#log.warn("uptime attestation not checked", { signer: a.signer, error: (error as Error).message });
      return "error";
    } finally {
      this.#inFlight--;
    }
  }

  async #check(a: UptimeAttestation): Promise<string | undefined> {
    if (a.relayer.toLowerCase() !== this.#o.relayer.toLowerCase()) return "names another relayer";
    const current = this.#o.currentEpoch();
    if (a.epoch >= current) return "epoch not ended";
    if (a.epoch + BigInt(this.#o.windowEpochs()) < current) return "submission window closed";
    if (!qualifies(a)) return "below the minimum (100 probes, 99%)";
    // Pushed again on every new link and every few minutes: a copy held costs no signature work.
    if (this.#o.store.hasAttestation(a.epoch, a.signer)) return "duplicate";
    let recovered: Address;
    try {
      recovered = await recoverUptimeSigner(
        this.#o.domain,
        {
          relayer: getAddress(a.relayer),
          epoch: a.epoch,
          probes: a.probes,
          answered: a.answered,
          measurements: a.measurements,
        },
        a,
      );
    } catch {
      return "malformed signature";
    }
    if (recovered.toLowerCase() !== a.signer.toLowerCase()) return "bad signature";
    const operator = await this.#o.operatorOf(a.signer);
    if (operator === zeroAddress) return "signer not registered";
    if (operator.toLowerCase() === this.#o.relayer.toLowerCase()) return "own signer";
    return undefined;
  }
}

/** RelayerRegistry.operatorOf, cached for `ttlMs` (bounded); errors propagate (the inbox counts them). */
export function registryOperatorOf(client: PublicClient, registry: Address, ttlMs = 60_000, max = 4_096) {
  return cachedReads(
    (signer) =>
      client.readContract({ address: registry, abi: relayerRegistryAbi, functionName: "operatorOf", args: [signer] }),
    ttlMs,
    max,
  );
}

/**
 * An operator's node record from the registry (getNode), each kept `ttlMs` (default 5 min): the
 * uptime prober asks for every peer's record at each refresh (10 s), which uncached was one RPC
 * call per peer every 10 s, most of a relay's calls on a public RPC. A changed endpoint or keys
 * are seen within `ttlMs`.
 */
export function registryNodeOf(
  client: PublicClient,
  registry: Address,
  options: { ttlMs?: number; max?: number; now?: () => number } = {},
) {
  return cachedReads(
    (operator) =>
      client.readContract({ address: registry, abi: relayerRegistryAbi, functionName: "getNode", args: [operator] }),
    options.ttlMs ?? 300_000,
    options.max ?? 4_096,
    options.now,
  );
}

/** `read` behind a cache of at most `max` addresses, each answer kept `ttlMs` (a failed read is not kept). */
function cachedReads<T>(read: (key: Address) => Promise<T>, ttlMs: number, max: number, now: () => number = Date.now) {
  const cache = new Map<string, { value: T; at: number }>();
  return async (key: Address): Promise<T> => {
    const id = key.toLowerCase();
    const hit = cache.get(id);
    if (hit && now() - hit.at < ttlMs) return hit.value;
    const value = await read(key);
    cache.delete(id); // re-inserted last: the oldest entry is the first one dropped
    if (cache.size >= max) cache.delete(cache.keys().next().value as string);
    cache.set(id, { value, at: now() });
    return value;
  };
}

/**
 * The relay's side of circuits (docs/protocol.md, "Circuits"): answers CREATE on inbound links,
 * removes its onion layer from forward cells, adds it to backward ones, extends circuits to the
 * next hop on request, and, on an exit, opens streams to targets through `openTarget`.
 *
 * Nothing here touches a socket: links come from link/, target connections from the injected
 * `openTarget` (exit/ in production).
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { HELLO_BYTES, REPLY_BYTES, respondToHandshake } from "../crypto/handshake.ts";
import type { NodeMetrics } from "../metrics/index.ts";
import { AuthenticationError, TAG_BYTES } from "../crypto/cipher.ts";
import { MLKEM768_PUBLIC_BYTES, X25519_PUBLIC_BYTES, keysHashOf } from "../crypto/keys.ts";
import type { RelayPublicKeys, StaticKeys } from "../crypto/keys.ts";
import type { CellQueue, Link } from "../link/link.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import {
  CellCommand,
  DestroyReason,
  PING_MAX_BYTES,
  PROBE_MAX_BYTES,
  ProtocolError,
  RelayCommand,
  decodeExtend,
  decodeRelayMessage,
  decodeTarget,
  encodeRelayHeader,
} from "../wire/cell.ts";
import type { Cell, Target } from "../wire/cell.ts";
import { StreamOpenError, StreamReason } from "../wire/reasons.ts";
import type { PaymentGate } from "../accounting/gate.ts";
import { decodePayHello, decodePayLock, decodePayReceipt, encodePayStop } from "../wire/payment.ts";
import { decodeUptime, type UptimeAttestation } from "../wire/uptime.ts";
import { type PayHello, type PayLock, PayStopReason } from "../wire/payment.ts";
import { CircuitMux } from "./mux.ts";
import { LAYER_MINE, LAYER_PASS, RelayHop, sealLayer } from "./onion.ts";
import { CircuitStream, STREAM_WINDOW } from "./stream.ts";

export type OpenTarget = (target: Target, signal: AbortSignal) => Promise<Duplex>;
export type ConnectLink = (host: string, port: number, relay: RelayPublicKeys) => Promise<Link>;

export interface RelayLimits {
  circuitsPerLink: number;
  /** CREATE handshakes per second per inbound link (burst 2x): each costs the relay ~0.2 ms CPU. */
  createsPerSecond: number;
  streamsPerCircuit: number;
  /** A stream must connect within this time (exit). */
  connectTimeoutMs: number;
  /** An exit stream with no traffic either way for this long is closed (END "TTL expired"). */
  streamIdleMs: number;
  /** An inbound link that carries no circuit and no cell for this long is closed. */
  linkIdleMs: number;
  /**
   * Cells one circuit may have waiting for a congested link, each direction. The end-to-end
   * stream windows bound what a well-behaved circuit has in flight: 32 cells per stream, times
   * `streamsPerCircuit` (the default). A circuit past it broke flow control and is destroyed.
   */
  circuitQueueCells: number;
  /**
   * Cells queued on all of this relay's circuits together. Past it, the circuits holding the most
   * are destroyed (resource limit) until the total is back under (Tor's out-of-memory handler):
   * many circuits each within their own bound must not exhaust the relay. Checked every 250 ms.
   */
  queueBudgetCells: number;
  /** PINGs answered per second per link (burst the same): uptime probes come every 250 ms at most. */
  pingsPerSecond: number;
}

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  circuitsPerLink: 8192,
  createsPerSecond: 200,
  streamsPerCircuit: 256,
  connectTimeoutMs: 10_000,
  streamIdleMs: 10 * 60_000,
  linkIdleMs: 5 * 60_000,
  circuitQueueCells: STREAM_WINDOW * 256,
  queueBudgetCells: 16_384, // 256 MiB of full cells
  pingsPerSecond: 8,
};

export interface RelayCoreOptions {
  keys: StaticKeys;
  connectLink: ConnectLink;
  /** Set on exits only; without it BEGIN is answered with END(not allowed). */
  openTarget?: OpenTarget;
  limits?: Partial<RelayLimits>;
  logger?: Logger;
  rekeyInterval?: number;
  /**
   * Adversarial tests only: sees every forward cell body this relay is about to pass on and may
   * change it, return false to drop it, or `{ destroy }` to destroy the circuit with any reason it
   * likes (a malicious relay). Never set in production.
   */
  tamperForward?: (body: Buffer) => boolean | void | { destroy: DestroyReason };
  /**
   * In-band payment (docs/settlement.md): every relay cell of every circuit is counted by the
   * gate, which decides whether the circuit's payer is still served. Without it, relaying is free.
   */
  payments?: PaymentGate;
  /** Prometheus metrics of this node (relayer/src/metrics): cells, circuits, handshakes, errors. */
  metrics?: NodeMetrics;
  /** A payer's signed lock request for this relay arrived (PAY_LOCK): land it with openLocks. */
  onLockRequest?: (lock: PayLock) => void;
  /**
   * Another relay pushed an uptime attestation for this relay (UPTIME link cell, only length-checked
   * here): node/uptime.ts checks and keeps it. Without it, UPTIME cells are ignored.
   */
  onUptime?: (attestation: UptimeAttestation) => void;
  /**
   * Checks a PAY_HELLO's signature over the hop handshake's binding (accounting/client-keys.ts);
   * a hello that fails is answered like a bad receipt. Without it, hellos are taken on trust (tests).
   */
  checkPayHello?: (binding: Buffer, hello: PayHello) => Promise<boolean>;
  /**
   * Whether an EXTEND may go to this endpoint with these keys (mesh/known-relays.ts: the relays this
   * relay knows from its directory, bootstrap nodes or the registry). Unset: any relay a client names.
   */
  isKnownRelay?: (host: string, port: number, keysHash: Uint8Array) => boolean;
}

/** UPTIME cells a link may push in a burst, and how often it earns another (an honest attester sends one per epoch). */
const UPTIME_BURST = 4;
const UPTIME_REFILL_MS = 60_000;

/** How long a circuit whose payer was stopped lingers so that its PAY_STOP reaches the client. */
const PAY_STOP_GRACE_MS = 1_000;

/** Runs every circuit that passes through this relay. */
export class RelayCore {
  readonly options: RelayCoreOptions;
  readonly limits: RelayLimits;
  private readonly log: Logger;
  private readonly outbound = new Map<string, Promise<CircuitMux>>();
  /** Outbound links that are up (the map above holds promises). */
  private readonly outboundLinks = new Set<Link>();
  private readonly inbound = new Map<Link, Map<number, RelayCircuit>>();
  private readonly sweeper: NodeJS.Timeout;
  /** Circuits alive here (for metrics and tests). */
  circuits = 0;
  /** Ids of circuits for the payment gate (circuit ids are only unique per link). */
  private payIds = 0;

  constructor(options: RelayCoreOptions) {
    this.options = options;
    this.limits = { ...DEFAULT_RELAY_LIMITS, ...options.limits };
    if (options.limits?.circuitQueueCells === undefined)
      this.limits.circuitQueueCells = STREAM_WINDOW * this.limits.streamsPerCircuit;
    this.log = options.logger ?? silentLogger;
    // Idle links hold a socket and keys for nothing: sweep them (bounded: one pass over links).
    this.sweeper = setInterval(() => this.sweepIdleLinks(), Math.max(50, Math.min(30_000, this.limits.linkIdleMs / 2)));
    this.sweeper.unref();
    this.budgetTimer = setInterval(() => this.enforceQueueBudget(), 250);
    this.budgetTimer.unref();
  }

  private readonly budgetTimer: NodeJS.Timeout;

  /** Destroys the circuits with the largest queues while the relay is over its queue budget. */
  private enforceQueueBudget(): void {
    let total = this.queuedCells();
    if (total <= this.limits.queueBudgetCells) return;
    const all: RelayCircuit[] = [];
    for (const circuits of this.inbound.values()) for (const c of circuits.values()) all.push(c);
    all.sort((a, b) => b.queued - a.queued);
    let destroyed = 0;
    for (const c of all) {
      if (total <= this.limits.queueBudgetCells || c.queued === 0) break;
      total -= c.queued;
      c.destroy(DestroyReason.resourceLimit);
      destroyed++;
    }
    this.log.warn("relay over its queue budget: destroyed the circuits holding the most", {
      destroyed,
      budget: this.limits.queueBudgetCells,
    });
  }

  private sweepIdleLinks(now = Date.now()): void {
    for (const [link, circuits] of this.inbound) {
      if (circuits.size === 0 && now - link.lastActivity >= this.limits.linkIdleMs) {
        this.log.debug("closing an idle link");
        link.close();
      }
    }
  }

  /** Takes over an accepted, handshaken link from a client or a previous hop. */
  attach(link: Link): void {
    const circuits = new Map<number, RelayCircuit>();
    this.inbound.set(link, circuits);
    const bucket = {
      tokens: this.limits.createsPerSecond * 2,
      at: Date.now(),
      uptime: UPTIME_BURST,
      uptimeAt: Date.now(),
      pings: this.limits.pingsPerSecond,
      pingsAt: Date.now(),
    };
    link.setHandler({
      onCell: (cell) => {
        try {
          this.onInboundCell(link, circuits, cell, bucket);
        } catch (error) {
          if (!(error instanceof ProtocolError)) throw error;
          this.log.warn("protocol violation on inbound link, closing it", { error: error.message });
          link.close(error);
        }
      },
      onClose: () => {
        this.inbound.delete(link);
        for (const c of [...circuits.values()]) c.destroy(DestroyReason.linkClosed, "prev");
      },
    });
  }

  /** Cells waiting in circuit queues on this relay's links (tests, metrics). */
  queuedCells(): number {
    let n = 0;
    for (const link of this.inbound.keys()) n += link.queuedCells;
    for (const link of this.outboundLinks) n += link.queuedCells;
    return n;
  }

  /** Closes every link (and so every circuit). */
  close(): void {
    clearInterval(this.sweeper);
    clearInterval(this.budgetTimer);
    for (const link of [...this.inbound.keys()]) link.close();
    for (const mux of this.outbound.values())
      void mux.then(
        (m) => m.link.close(),
        () => {},
      );
    this.outbound.clear();
  }

  private onInboundCell(
    link: Link,
    circuits: Map<number, RelayCircuit>,
    cell: Cell,
    bucket: { tokens: number; at: number; uptime: number; uptimeAt: number; pings: number; pingsAt: number },
  ): void {
    const existing = circuits.get(cell.circuitId);
    switch (cell.command) {
      case CellCommand.create: {
        if (existing || cell.circuitId === 0) throw new ProtocolError("CREATE for a circuit id in use");
        const now = Date.now();
        const rate = this.limits.createsPerSecond;
        bucket.tokens = Math.min(rate * 2, bucket.tokens + ((now - bucket.at) / 1000) * rate);
        bucket.at = now;
        if (circuits.size >= this.limits.circuitsPerLink || bucket.tokens < 1) {
          link.send(cell.circuitId, CellCommand.destroy, [Buffer.of(DestroyReason.resourceLimit)]);
          return;
        }
        bucket.tokens -= 1;
        if (cell.body.length !== HELLO_BYTES) throw new ProtocolError("CREATE body size");
        let answer;
        const timed = this.options.metrics?.timeHandshake("responder");
        try {
          answer = respondToHandshake(this.options.keys, cell.body);
          timed?.();
        } catch (error) {
          this.options.metrics?.error("handshake");
          this.log.info("circuit handshake refused", { error: (error as Error).message });
          link.send(cell.circuitId, CellCommand.destroy, [Buffer.of(DestroyReason.protocol)]);
          return;
        }
        // The answer leaves first: the circuit's state below is CPU work the client need not
        // wait for (no cell of this circuit can arrive before this callback returns).
        link.send(cell.circuitId, CellCommand.created, [answer.reply]);
        link.flushNow();
        const payId = ++this.payIds;
        this.options.payments?.open(payId);
        const circuit = new RelayCircuit(
          this,
          link,
          cell.circuitId,
          new RelayHop(answer.keys, this.options.rekeyInterval),
          answer.keys.binding,
          () => {
            circuits.delete(cell.circuitId);
            this.circuits--;
            this.options.metrics?.circuitsClosed.inc();
            this.options.payments?.close(payId);
          },
          payId,
        );
        circuits.set(cell.circuitId, circuit);
        this.circuits++;
        this.options.metrics?.circuitsOpened.inc();
        return;
      }
      case CellCommand.relay:
        existing?.fromPrev(cell.body);
        return;
      case CellCommand.destroy:
        existing?.destroy(DestroyReason.requested, "prev");
        return;
      case CellCommand.ping:
        // Another relay measuring this one for its uptime attestations: echo at once. Cheap (one
        // sealed control cell), so no rate limit beyond the link's own admission.
        if (cell.circuitId !== 0 || cell.body.length > PING_MAX_BYTES) throw new ProtocolError("PING");
        {
          // An honest prober sends one every 250 ms at most: answer `pingsPerSecond` per link, and
          // none while the link's output is backed up (a peer that never reads cannot grow it).
          const now = Date.now();
          const rate = this.limits.pingsPerSecond;
          bucket.pings = Math.min(rate, bucket.pings + ((now - bucket.pingsAt) / 1000) * rate);
          bucket.pingsAt = now;
          if (bucket.pings < 1 || link.congested) return;
          bucket.pings -= 1;
        }
        link.send(0, CellCommand.pong, [cell.body]);
        return;
      case CellCommand.uptime: {
        if (cell.circuitId !== 0) throw new ProtocolError("UPTIME on a circuit");
        const attestation = decodeUptime(cell.body);
        const now = Date.now();
        const earned = Math.floor((now - bucket.uptimeAt) / UPTIME_REFILL_MS);
        if (earned > 0) {
          bucket.uptime = Math.min(UPTIME_BURST, bucket.uptime + earned);
          bucket.uptimeAt = now;
        }
        // Checking one costs a signature recovery and a chain read: a link that pushes more than
        // an attester would is ignored, not served.
        if (bucket.uptime < 1) return;
        bucket.uptime--;
        this.options.onUptime?.(attestation);
        return;
      }
      default:
        throw new ProtocolError(`cell command ${cell.command} not allowed on an inbound link`);
    }
  }

  /** A link to the next hop, shared by every circuit extended there. */
  async outboundMux(host: string, port: number, relay: RelayPublicKeys): Promise<CircuitMux> {
    const key = `${host}|${port}|${Buffer.from(relay.keysHash).toString("hex")}`;
    let mux = this.outbound.get(key);
    if (mux) {
      const ready = await mux.catch(() => undefined);
      if (ready && !ready.link.isClosed) return ready;
      this.outbound.delete(key);
    }
    mux = this.options.connectLink(host, port, relay).then((link) => {
      this.outboundLinks.add(link);
      return new CircuitMux(link, () => {
        this.outboundLinks.delete(link);
        this.outbound.delete(key);
      });
    });
    this.outbound.set(key, mux);
    mux.catch(() => this.outbound.delete(key));
    return mux;
  }

  get logger(): Logger {
    return this.log;
  }
}

type Side = "prev" | "next";

function resetOrDestroy(socket: Duplex): void {
  const reset = (socket as Partial<Socket>).resetAndDestroy;
  if (typeof reset === "function" && !socket.destroyed) reset.call(socket);
  else socket.destroy();
}

class RelayCircuit {
  private readonly core: RelayCore;
  private readonly prev: Link;
  private readonly prevId: number;
  private readonly hop: RelayHop;
  /** The hop handshake's binding: what this circuit's PAY_HELLO must be signed over. */
  private readonly binding: Buffer;
  private readonly onGone: () => void;
  private next: { mux: CircuitMux; id: number; queue: CellQueue } | undefined;
  /** Backward cells of this circuit waiting for the previous link (passed on and our own, in order). */
  private readonly prevQueue: CellQueue;
  private extending = false;
  private readonly streams = new Map<number, CircuitStream>();
  private dead = false;
  private readonly payId: number;
  /** The payer was stopped: nothing more is carried, the circuit ends after a grace period. */
  private unpaid = false;
  /** Settles once the last PAY_HELLO's signature was checked (receipts wait for it). */
  private helloChecked: Promise<void> = Promise.resolve();

  constructor(
    core: RelayCore,
    prev: Link,
    prevId: number,
    hop: RelayHop,
    binding: Buffer,
    onGone: () => void,
    payId: number,
  ) {
    this.core = core;
    this.prev = prev;
    this.prevId = prevId;
    this.hop = hop;
    this.binding = binding;
    this.onGone = onGone;
    this.payId = payId;
    this.prevQueue = prev.openQueue(core.limits.circuitQueueCells);
  }

  /** Counts one relay cell with the payment gate; false (and the payer stopped) if it refuses. */
  private charge(direction: "forward" | "backward", bytes: number): boolean {
    if (this.unpaid) return false;
    this.core.options.metrics?.cell(direction, bytes);
    const gate = this.core.options.payments;
    if (!gate) return true;
    const verdict = gate.cell(this.payId);
    if (verdict.serve) return true;
    this.stopPayer(verdict.reason);
    return false;
  }

  /** Tells the client why (PAY_STOP), stops carrying anything, and destroys the circuit shortly. */
  private stopPayer(reason: PayStopReason): void {
    if (this.unpaid || this.dead) return;
    this.unpaid = true;
    this.core.logger.info("payer stopped on a circuit", { reason });
    const sealed = sealLayer(this.hop.sealBackward, LAYER_MINE, [
      encodeRelayHeader(RelayCommand.payStop, 0),
      encodePayStop(reason),
    ]);
    this.prevQueue.push(this.prevId, CellCommand.relay, sealed);
    setTimeout(() => this.destroy(DestroyReason.payment), PAY_STOP_GRACE_MS).unref();
  }

  /** Applies the gate's answer to a payment message, once it has one. */
  private afterPayment(verdict: Promise<{ serve: boolean; reason?: PayStopReason }>): void {
    verdict.then(
      (v) => {
        if (!v.serve && v.reason !== undefined) this.stopPayer(v.reason);
      },
      (error: unknown) => this.core.logger.warn("payment check failed", { error: (error as Error).message }),
    );
  }

  /** Cells of this circuit waiting for a congested link, both directions. */
  get queued(): number {
    return this.prevQueue.length + (this.next?.queue.length ?? 0);
  }

  fromPrev(body: Buffer): void {
    if (this.dead || !this.charge("forward", body.length)) return;
    let plain: Buffer;
    try {
      plain = this.hop.openForward.open(body);
    } catch (error) {
      if (!(error instanceof AuthenticationError)) throw error;
      this.core.logger.warn("forward cell failed authentication: destroying the circuit");
      return this.destroy(DestroyReason.authentication);
    }
    try {
      if (plain[0] === LAYER_PASS) return this.passForward(plain.subarray(1));
      if (plain[0] !== LAYER_MINE) throw new ProtocolError("bad onion layer flag");
      this.handle(plain.subarray(1));
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.core.logger.warn("protocol violation on a circuit, destroying it", { error: error.message });
      this.destroy(DestroyReason.protocol);
    }
  }

  private passForward(inner: Buffer): void {
    if (!this.next) throw new ProtocolError("cell to pass on, but the circuit ends here");
    if (inner.length <= TAG_BYTES) throw new ProtocolError("cell to pass on is shorter than an onion layer");
    const tampered = this.core.options.tamperForward?.(inner);
    if (tampered === false) return;
    if (typeof tampered === "object") return this.destroy(tampered.destroy);
    // Never pause the previous link for one circuit (every circuit on it would stall): queue this
    // circuit's cells, and destroy it if it overruns what its streams' windows allow.
    if (!this.next.queue.push(this.next.id, CellCommand.relay, [inner])) this.overflow("next");
  }

  private overflow(side: Side): void {
    this.core.logger.warn("circuit queue overflow: destroying the circuit", {
      side,
      cells: this.core.limits.circuitQueueCells,
    });
    this.destroy(DestroyReason.resourceLimit);
  }

  private fromNext(cell: Cell): void {
    if (this.dead) return;
    if (cell.command === CellCommand.relay) {
      if (!this.charge("backward", cell.body.length)) return;
      const sealed = sealLayer(this.hop.sealBackward, LAYER_PASS, [cell.body]);
      if (!this.prevQueue.push(this.prevId, CellCommand.relay, sealed)) this.overflow("prev");
    } else if (cell.command === CellCommand.destroy) {
      this.destroy((cell.body[0] ?? DestroyReason.none) as DestroyReason, "next");
    } else {
      this.destroy(DestroyReason.protocol);
    }
  }

  /** Sends a relay message that this hop originates, back towards the client. */
  sendBackward(command: RelayCommand, streamId: number, data: readonly Buffer[]): boolean {
    if (
      this.dead ||
      !this.charge(
        "backward",
        data.reduce((n, d) => n + d.length, 0),
      )
    )
      return false;
    const sealed = sealLayer(this.hop.sealBackward, LAYER_MINE, [encodeRelayHeader(command, streamId), ...data]);
    // Through the same queue as cells passed on: both are sealed with this hop's backward key in
    // sequence, so they must leave in that order. Our own streams are bounded by their windows.
    if (!this.prevQueue.push(this.prevId, CellCommand.relay, sealed)) {
      this.overflow("prev");
      return false;
    }
    return !this.prev.needsDrain;
  }

  private handle(bytes: Buffer): void {
    const message = decodeRelayMessage(bytes);
    switch (message.command) {
      case RelayCommand.extend:
        return this.extend(message.data);
      case RelayCommand.begin:
        return this.begin(message.streamId, message.data);
      case RelayCommand.probe:
        // Any hop answers for itself, so the client can tell which hop of a stalled circuit is
        // silent (a frozen relay) and avoid that one when it rebuilds.
        if (message.streamId !== 0 || message.data.length > PROBE_MAX_BYTES) throw new ProtocolError("PROBE size");
        this.sendBackward(RelayCommand.probed, 0, [message.data]);
        return;
      case RelayCommand.payHello: {
        if (message.streamId !== 0) throw new ProtocolError("PAY_HELLO off stream 0");
        const hello = decodePayHello(message.data);
        const gate = this.core.options.payments;
        if (!gate) return;
        // The hello must be signed by its key over this hop handshake's binding: nobody can name
        // someone else's key for a circuit (cells until then count as the circuit's pre-hello cells).
        const check = this.core.options.checkPayHello;
        gate.helloPending(this.payId);
        const refused = () => {
          gate.helloRefused(this.payId);
          return { serve: false, reason: PayStopReason.badReceipt };
        };
        const checked = check ? check(this.binding, hello) : Promise.resolve(true);
        // gate.hello names the circuit's key before its first await (its chain read): receipts
        // that follow the hello are judged once the signature is checked, not after that read.
        const verdict = checked.then((ok) => (ok ? gate.hello(this.payId, hello.key) : refused()), refused);
        this.helloChecked = checked.then(
          () => {},
          () => {},
        );
        this.afterPayment(verdict);
        return;
      }
      case RelayCommand.payReceipt: {
        if (message.streamId !== 0) throw new ProtocolError("PAY_RECEIPT off stream 0");
        const r = decodePayReceipt(message.data);
        const gate = this.core.options.payments;
        if (gate)
          this.afterPayment(
            this.helloChecked
              .then(() =>
                gate.receipt(this.payId, r.epoch, { key: r.key, cells: r.cells, bytes_: r.bytes, r: r.r, vs: r.vs }),
              )
              .then((verdict) => {
                this.core.options.metrics?.receipt(verdict.serve ? "accepted" : "refused");
                return verdict;
              }),
          );
        return;
      }
      case RelayCommand.payLock: {
        if (message.streamId !== 0) throw new ProtocolError("PAY_LOCK off stream 0");
        this.core.options.onLockRequest?.(decodePayLock(message.data));
        return;
      }
      case RelayCommand.data:
      case RelayCommand.end:
      case RelayCommand.sendme: {
        // DATA, END or SENDME for a stream already closed here were in flight when it closed:
        // drop them (destroying the circuit would kill its other streams for a benign race).
        this.streams.get(message.streamId)?.receive(message.command, message.data);
        return;
      }
      default:
        throw new ProtocolError(`relay command ${message.command} not accepted by a relay`);
    }
  }

  private extend(data: Buffer): void {
    if (this.next || this.extending) throw new ProtocolError("EXTEND on a circuit that already goes on");
    const req = decodeExtend(data, { x25519: X25519_PUBLIC_BYTES, mlkem: MLKEM768_PUBLIC_BYTES, hello: HELLO_BYTES });
    const relay = { x25519: req.x25519, mlkem: req.mlkem, keysHash: keysHashOf(req.x25519, req.mlkem) };
    const known = this.core.options.isKnownRelay;
    if (known && !known(req.host, req.port, relay.keysHash)) {
      // Not a relay this one knows: no connection is even attempted (no port probing through us).
      this.core.logger.info("extend refused: not a known relay");
      this.core.logger.debug("extend refused", { host: req.host, port: req.port });
      this.sendBackward(RelayCommand.extendFailed, 0, [Buffer.of(StreamReason.notAllowed)]);
      return;
    }
    this.extending = true;
    const fail = (reason: StreamReason, why: string) => {
      this.extending = false;
      this.core.logger.info("extend failed", { error: why });
      this.sendBackward(RelayCommand.extendFailed, 0, [Buffer.of(reason)]);
    };
    this.core.outboundMux(req.host, req.port, relay).then(
      (mux) => {
        if (this.dead) return;
        if (mux.link.isClosed) return fail(StreamReason.hostUnreachable, "link closed");
        const id = mux.add({
          onCell: (cell) => (this.next ? this.fromNext(cell) : created(cell)),
          onLinkClosed: () =>
            this.next
              ? this.destroy(DestroyReason.linkClosed, "next")
              : fail(StreamReason.hostUnreachable, "link closed"),
        });
        const created = (cell: Cell) => {
          this.extending = false;
          if (this.dead) {
            mux.send(id, CellCommand.destroy, [Buffer.of(DestroyReason.requested)]);
            mux.remove(id);
          } else if (cell.command === CellCommand.created && cell.body.length === REPLY_BYTES) {
            this.next = { mux, id, queue: mux.link.openQueue(this.core.limits.circuitQueueCells) };
            this.sendBackward(RelayCommand.extended, 0, [cell.body]);
          } else {
            if (cell.command !== CellCommand.destroy)
              mux.send(id, CellCommand.destroy, [Buffer.of(DestroyReason.protocol)]);
            mux.remove(id);
            fail(StreamReason.generalFailure, "next hop refused the circuit");
          }
        };
        mux.send(id, CellCommand.create, [req.hello]);
      },
      (error: Error) => fail(StreamReason.hostUnreachable, error.message),
    );
  }

  private begin(streamId: number, data: Buffer): void {
    if (streamId === 0) throw new ProtocolError("BEGIN on stream 0");
    if (this.streams.has(streamId)) throw new ProtocolError("BEGIN for a stream id in use");
    const target = decodeTarget(data);
    const openTarget = this.core.options.openTarget;
    if (!openTarget || this.next) {
      this.sendBackward(RelayCommand.end, streamId, [Buffer.of(StreamReason.notAllowed)]);
      return;
    }
    if (this.streams.size >= this.core.limits.streamsPerCircuit) {
      this.sendBackward(RelayCommand.end, streamId, [Buffer.of(StreamReason.generalFailure)]);
      return;
    }
    const stream = new CircuitStream(streamId, {
      send: (command, id, parts) => this.sendBackward(command, id, parts),
      whenWritable: (callback) => this.prev.onceDrained(callback),
      release: (id) => {
        if (this.streams.get(id) === stream) this.streams.delete(id);
      },
    });
    this.streams.set(streamId, stream);
    // Errors end the stream (END with a reason goes back); they must never escape as uncaught.
    stream.on("error", (error) => this.core.logger.debug("exit stream error", { error: error.message }));
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.core.limits.connectTimeoutMs);
    stream.once("close", () => abort.abort());
    this.core.logger.debug("exit stream opening", { host: target.host, port: target.port });
    openTarget(target, abort.signal).then(
      (socket) => {
        clearTimeout(timer);
        if (stream.destroyed) return void socket.destroy();
        this.sendBackward(RelayCommand.connected, streamId, []);
        // Idle streams are closed: any byte either way restarts the clock.
        const idle = setTimeout(
          () => stream.destroy(new StreamOpenError(StreamReason.ttlExpired, "stream idle")),
          this.core.limits.streamIdleMs,
        );
        idle.unref();
        const touch = () => idle.refresh();
        socket.on("data", touch);
        stream.on("data", touch);
        stream.once("close", () => clearTimeout(idle));
        socket.on("error", (error) => stream.destroy(error));
        // A stream that died (circuit destroyed, END with an error) reaches the target as a TCP
        // reset, so that the target cannot take a truncated upload for a complete one.
        stream.on("error", () => resetOrDestroy(socket));
        stream.on("close", () => socket.destroy());
        socket.on("close", () => {
          if (!stream.writableEnded) stream.destroy();
        });
        stream.pipe(socket);
        socket.pipe(stream);
      },
      (error: unknown) => {
        clearTimeout(timer);
        const reason =
          error instanceof StreamOpenError
            ? error.reason
            : abort.signal.aborted
              ? StreamReason.ttlExpired
              : StreamReason.generalFailure;
        if (!stream.destroyed) stream.destroy(new StreamOpenError(reason, "target unreachable"));
      },
    );
  }

  /** Tears the circuit down, telling the side(s) that did not ask for it. */
  destroy(reason: DestroyReason, from?: Side): void {
    if (this.dead) return;
    this.dead = true;
    this.prevQueue.close();
    this.next?.queue.close();
    if (from !== "prev" && !this.prev.isClosed) this.prev.send(this.prevId, CellCommand.destroy, [Buffer.of(reason)]);
    if (this.next) {
      if (from !== "next") this.next.mux.send(this.next.id, CellCommand.destroy, [Buffer.of(reason)]);
      this.next.mux.remove(this.next.id);
    }
    const error = new Error(`circuit destroyed (reason ${reason})`);
    for (const s of [...this.streams.values()]) s.abort(error);
    this.streams.clear();
    this.onGone();
  }
}

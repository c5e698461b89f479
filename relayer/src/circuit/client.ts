/**
 * The client's side of a circuit (docs/protocol.md, "Circuits"): built hop by hop (telescoping)
 * — a hybrid handshake with the first hop in CREATE, then with each further hop inside an EXTEND
 * sent through the hops already built — so no single relay sees both the client and the target.
 * Streams are opened at the last hop with BEGIN.
 */
import { AuthenticationError } from "../crypto/cipher.ts";
import { HandshakeError, REPLY_BYTES, startClientHandshake } from "../crypto/handshake.ts";
import type { ClientHandshake } from "../crypto/handshake.ts";
import type { RelayPublicKeys } from "../crypto/keys.ts";
import {
  CellCommand,
  DestroyReason,
  MAX_HOPS,
  PROBE_MAX_BYTES,
  ProtocolError,
  RelayCommand,
  decodeRelayMessage,
  encodeExtend,
  encodeRelayHeader,
  encodeTarget,
} from "../wire/cell.ts";
import type { Cell, Target } from "../wire/cell.ts";
import { StreamOpenError, StreamReason, parseStreamReason } from "../wire/reasons.ts";
import { decodePayStop, encodePayHello, encodePayLock, encodePayReceipt, payStopReasonName } from "../wire/payment.ts";
import type { PayerChannels } from "../accounting/payer.ts";
import type { Address } from "viem";
import type { CircuitEndpoint, CircuitMux } from "./mux.ts";
import { ClientHop, unwrapBackward, wrapForward } from "./onion.ts";
import { CircuitStream } from "./stream.ts";

/**
 * Stream ids this client closed before the exit's END arrived, remembered so that cells already
 * in flight for them (a CONNECTED crossing our END, DATA, the exit's END) are ignored instead of
 * breaking the circuit, and so that the id is not reused while they can still arrive. Bounded in
 * count and age: the exit answers every END with its own, which frees the id at once.
 */
const CLOSED_STREAMS_MAX = 1024;
const CLOSED_STREAM_TTL_MS = 60_000;

/** A relay the client may use as a hop: where it listens and its verified static public keys. */
export interface HopInfo {
  host: string;
  port: number;
  keys: RelayPublicKeys;
}

/** Why a circuit ended; `reason` is the DESTROY reason (authentication for a tampered cell). */
export class CircuitError extends Error {
  override name = "CircuitError";
  readonly reason: DestroyReason;
  /** During a build: the 0-based hop that did not answer or could not be reached, if known. */
  readonly hop: number | undefined;
  /** EXTEND_FAILED's reason (a StreamReason) when the hop before refused to extend. */
  readonly extendReason: number | undefined;
  constructor(
    reason: DestroyReason,
    message: string,
    options?: { cause?: unknown; hop?: number; extendReason?: number },
  ) {
    super(message, options);
    this.reason = reason;
    this.hop = options?.hop;
    this.extendReason = options?.extendReason;
  }
}

/**
 * Why a stream could not open on a circuit that died: a hop that stopped serving this payer (its
 * PAY_STOP names it) refused it, "not allowed" (SOCKS5 REP 2), so that the application learns it
 * is payment and not a failure of the network; any other death, a bare DESTROY with the payment
 * reason included (anyone on the path can send one), is a general failure.
 */
function openRefusal(error: CircuitError): StreamOpenError {
  const paid = error.reason === DestroyReason.payment && error.hop !== undefined;
  const reason = paid ? StreamReason.notAllowed : StreamReason.generalFailure;
  return new StreamOpenError(reason, error.message, { cause: error });
}

export interface CircuitOptions {
  /** Each hop must answer within this time (default 10 s). */
  stepTimeoutMs?: number;
  rekeyInterval?: number;
  /** In-band payment: the payer's counters and the operator of each hop (undefined: unpaid hop). */
  payer?: CircuitPayer;
}

/** What a paying client needs to pay the hops of a circuit (docs/settlement.md). */
export interface CircuitPayer {
  channels: PayerChannels;
  operators: readonly (Address | undefined)[];
}

/** A liveness probe in flight: the nonce every hop must echo, and which hops have. */
type Probe = { nonce: Buffer; answered: boolean[]; waiters: Array<(silent: number) => void>; finish: () => void };

type Waiter = { resolve: (cell: Buffer) => void; reject: (error: Error) => void; expect: "created" | "extended" };

export class ClientCircuit implements CircuitEndpoint {
  readonly path: readonly HopInfo[];
  private readonly mux: CircuitMux;
  private readonly id: number;
  private readonly hops: ClientHop[] = [];
  /** Each hop handshake's binding (what the hop's PAY_HELLO is signed over). */
  private readonly bindings: Buffer[] = [];
  private readonly streams = new Map<number, CircuitStream>();
  private readonly opening = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  /** Closed here, END from the exit not seen yet: id → Date.now() at close, oldest first. */
  private readonly closedStreams = new Map<number, number>();
  private waiter: Waiter | undefined;
  /** Outstanding liveness probe. */
  private probing: Probe | undefined;
  private probeCount = 0;
  /**
   * Mesh beacons (mesh/monitor.ts): PROBED answers to `beacon` go here with the hop that sent them.
   * Beacon nonces have the top bit set; `probe` nonces never do.
   */
  onBeaconEcho: ((hop: number, nonce: Buffer) => void) | undefined;
  /**
   * Stream cells (BEGIN, CONNECTED, DATA, END, SENDME) received from and sent to the exit: the mesh
   * reads them as liveness (traffic from the exit proves every hop alive) and activity. Control
   * cells (beacons, receipts) are not counted, so that they cannot keep a circuit looking busy.
   */
  streamCellsIn = 0;
  streamCellsOut = 0;
  /** Set once this circuit must take no new streams (a stream open timed out, a hop is silent). */
  private retiredFlag = false;
  private nextStreamId = 1;
  private error: CircuitError | undefined;
  private readonly closeListeners: Array<(error: CircuitError) => void> = [];
  private payer: CircuitPayer | undefined;
  /**
   * Cells each hop carried before its PAY_HELLO left (the build's EXTEND and EXTENDED, anything
   * sent while the hello was signed): a relay charges them to the key only when the hello comes,
   * and drops them if the circuit dies before. So does the payer: they join the hop's channel as
   * its hello leaves. -1 once it has.
   */
  private readonly beforeHello: number[] = [];
  /** Hops whose receipt is being signed (one at a time per hop). */
  private readonly signing = new Set<number>();
  /** Sends due receipts when traffic pauses (receipts are otherwise sent as cells pass). */
  private receiptTimer: NodeJS.Timeout | undefined;
  readonly createdAt = Date.now();

  private constructor(mux: CircuitMux, path: readonly HopInfo[]) {
    this.mux = mux;
    this.path = path;
    this.id = mux.add(this);
  }

  /** Builds a circuit through `path` (1–5 hops) on `mux`, a link to path[0]. */
  static async build(mux: CircuitMux, path: readonly HopInfo[], options: CircuitOptions = {}): Promise<ClientCircuit> {
    if (path.length < 1 || path.length > MAX_HOPS)
      throw new RangeError(`a circuit has 1..${MAX_HOPS} hops, got ${path.length}`);
    const circuit = new ClientCircuit(mux, path);
    const timeout = options.stepTimeoutMs ?? 10_000;
    // The build's EXTEND and EXTENDED cells are relay cells the hops count: so must the payer
    // (as the relays do, from the hop's hello on: `beforeHello`), or each circuit would leave the
    // first hop 4 cells and the second 2 ahead of every receipt, for good.
    circuit.payer = options.payer;
    try {
      let hs: ClientHandshake = startClientHandshake((path[0] as HopInfo).keys);
      for (let i = 0; i < path.length; i++) {
        const hop = path[i] as HopInfo;
        const wait = circuit.wait(i === 0 ? "created" : "extended", timeout);
        if (i === 0) mux.send(circuit.id, CellCommand.create, [hs.hello]);
        else {
          const body = encodeExtend({
            host: hop.host,
            port: hop.port,
            x25519: Buffer.from(hop.keys.x25519),
            mlkem: Buffer.from(hop.keys.mlkem),
            hello: hs.hello,
          });
          circuit.sendTo(i - 1, RelayCommand.extend, 0, [body]);
        }
        mux.link.flushNow();
        // The next hop's HELLO (an encapsulation to its static key, a DH with it) depends on
        // nothing of this hop: it is computed while this hop's answer is on its way (the cell
        // above has left: flushNow), off the build's critical path.
        const following = path[i + 1];
        const nextHs = following ? startClientHandshake(following.keys) : undefined;
        const keys = hs.finish(await wait);
        circuit.bindings.push(keys.binding);
        circuit.hops.push(new ClientHop(keys, options.rekeyInterval));
        if (nextHs) hs = nextHs;
      }
      if (options.payer) {
        for (let i = 0; i < circuit.hops.length; i++) {
          const operator = options.payer.operators[i];
          if (operator) circuit.sendHello(i, operator);
        }
        circuit.receiptTimer = setInterval(() => circuit.sendIdleReceipts(), options.payer.channels.intervalMs);
        circuit.receiptTimer.unref();
      }
    } catch (error) {
      const reason = error instanceof HandshakeError ? DestroyReason.authentication : DestroyReason.connectFailed;
      const hop = circuit.hops.length; // the hop being added when the build stopped
      circuit.fail(
        error instanceof CircuitError
          ? new CircuitError(error.reason, error.message, { cause: error.cause, hop, extendReason: error.extendReason })
          : new CircuitError(reason, `circuit build failed: ${(error as Error).message}`, { cause: error, hop }),
      );
      throw circuit.error;
    }
    return circuit;
  }

  get closed(): boolean {
    return this.error !== undefined;
  }

  /** No new streams: the entry builds another circuit for them. Existing streams carry on. */
  get retired(): boolean {
    return this.retiredFlag || this.closed;
  }

  retire(): void {
    this.retiredFlag = true;
  }

  /** Takes new streams again (a probe found every hop alive: the stall was the target's). */
  reinstate(): void {
    this.retiredFlag = false;
  }

  /**
   * Asks every hop to answer (PROBE/PROBED) and resolves with the index of the first hop that did
   * not within `timeoutMs` (the hops behind a silent one cannot answer either), or -1 when all did.
   * One probe at a time: a call while one runs waits for its answer.
   */
  probe(timeoutMs: number): Promise<number> {
    if (this.error) return Promise.resolve(0);
    return new Promise((resolve) => {
      if (this.probing) return void this.probing.waiters.push(resolve);
      const nonce = Buffer.alloc(PROBE_MAX_BYTES);
      nonce.writeBigUInt64BE(BigInt(++this.probeCount));
      const state: Probe = { nonce, answered: this.hops.map(() => false), waiters: [resolve], finish: () => {} };
      const timer = setTimeout(() => state.finish(), timeoutMs);
      state.finish = () => {
        clearTimeout(timer);
        if (this.probing === state) this.probing = undefined;
        const silent = this.error ? 0 : state.answered.indexOf(false);
        for (const waiter of state.waiters.splice(0)) waiter(silent);
      };
      this.probing = state;
      for (let i = 0; i < this.hops.length; i++) this.sendTo(i, RelayCommand.probe, 0, [nonce]);
    });
  }

  /**
   * Sends a beacon to hop `hop`: a PROBE carrying `nonce` (8 bytes, top bit set), which that hop
   * answers for itself; the answer goes to `onBeaconEcho`. False if the circuit is closed.
   */
  beacon(hop: number, nonce: Buffer): boolean {
    if (this.error || hop < 0 || hop >= this.hops.length) return false;
    if (nonce.length !== PROBE_MAX_BYTES || (nonce[0] as number) < 0x80) throw new RangeError("beacon nonce");
    this.sendTo(hop, RelayCommand.probe, 0, [nonce]);
    return true;
  }

  /** Streams opened and not yet answered by the exit. */
  get openingCount(): number {
    return this.opening.size;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  onClose(listener: (error: CircuitError) => void): void {
    if (this.error) listener(this.error);
    else this.closeListeners.push(listener);
  }

  /**
   * Opens a stream to `target` from the last hop; rejects with StreamOpenError(reason).
   *
   * `early` is optimistic data (Tor's): bytes the application sent before its stream was open,
   * sent as DATA right behind BEGIN instead of a round trip later. The exit holds them until its
   * connection to the target is up — which its exit policy decides as for any stream — and drops
   * them if the stream is refused, so a refusal still comes back as END with its reason.
   */
  openStream(target: Target, signal?: AbortSignal, early?: Buffer): Promise<CircuitStream> {
    if (this.error) return Promise.reject(openRefusal(this.error));
    const streamId = this.allocateStreamId();
    const stream = new CircuitStream(streamId, {
      send: (command, id, parts) => {
        this.streamCellsOut++;
        return this.sendTo(this.hops.length - 1, command, id, parts);
      },
      whenWritable: (callback) => this.mux.link.onceDrained(callback),
      release: (id, peerEnded) => {
        if (this.streams.get(id) !== stream) return;
        this.streams.delete(id);
        if (!peerEnded) this.rememberClosed(id);
      },
    });
    this.streams.set(streamId, stream);
    return new Promise<CircuitStream>((resolve, reject) => {
      const onAbort = () => {
        this.opening.delete(streamId);
        stream.abort(new StreamOpenError(StreamReason.ttlExpired, "stream open timed out"));
        // The exit may be connecting or have sent CONNECTED already: its answer is still to come.
        this.rememberClosed(streamId);
        this.sendTo(this.hops.length - 1, RelayCommand.end, streamId, [Buffer.of(StreamReason.ttlExpired)]);
        reject(new StreamOpenError(StreamReason.ttlExpired, "stream open timed out"));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.opening.set(streamId, {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(stream);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      });
      this.streamCellsOut++;
      this.sendTo(this.hops.length - 1, RelayCommand.begin, streamId, [encodeTarget(target)]);
      if (early && early.length > 0) stream.write(early);
    });
  }

  /** Tears the circuit down and tells the relays. */
  close(): void {
    if (this.error) return;
    this.mux.send(this.id, CellCommand.destroy, [Buffer.of(DestroyReason.requested)]);
    this.fail(new CircuitError(DestroyReason.requested, "circuit closed"));
  }

  onCell(cell: Cell): void {
    if (this.error) return;
    try {
      if (cell.command === CellCommand.created) {
        if (this.waiter?.expect !== "created" || cell.body.length !== REPLY_BYTES)
          throw new ProtocolError("unexpected CREATED");
        return this.settle(cell.body);
      }
      if (cell.command === CellCommand.destroy) {
        const reason = (cell.body[0] ?? DestroyReason.none) as DestroyReason;
        const what =
          reason === DestroyReason.authentication ? "a relay saw a cell fail authentication" : `reason ${reason}`;
        return this.fail(new CircuitError(reason, `circuit destroyed by a relay: ${what}`));
      }
      if (cell.command !== CellCommand.relay || this.hops.length === 0) throw new ProtocolError("unexpected cell");
      const { hop, message } = unwrapBackward(this.hops, cell.body);
      this.carried(hop);
      this.handle(hop, message);
    } catch (error) {
      const reason = error instanceof AuthenticationError ? DestroyReason.authentication : DestroyReason.protocol;
      if (!(error instanceof AuthenticationError || error instanceof ProtocolError)) throw error;
      this.mux.send(this.id, CellCommand.destroy, [Buffer.of(reason)]);
      this.fail(new CircuitError(reason, `circuit closed: ${error.message}`, { cause: error }));
    }
  }

  onLinkClosed(error: Error | undefined): void {
    this.fail(
      new CircuitError(DestroyReason.linkClosed, `link to the first hop closed${error ? `: ${error.message}` : ""}`, {
        cause: error,
        hop: 0,
      }),
    );
  }

  private handle(hop: number, bytes: Buffer): void {
    const message = decodeRelayMessage(bytes);
    const last = this.hops.length - 1;
    switch (message.command) {
      case RelayCommand.extended:
        if (hop !== last || this.waiter?.expect !== "extended") throw new ProtocolError("unexpected EXTENDED");
        return this.settle(message.data);
      case RelayCommand.extendFailed: {
        if (hop !== last || !this.waiter) throw new ProtocolError("unexpected EXTEND_FAILED");
        const waiter = this.waiter;
        this.waiter = undefined;
        return waiter.reject(
          new CircuitError(
            DestroyReason.connectFailed,
            `hop ${hop + 1} could not extend (reason ${message.data[0] ?? 1})`,
            {
              extendReason: message.data[0] ?? 1,
            },
          ),
        );
      }
      case RelayCommand.probed: {
        if (message.data.length === PROBE_MAX_BYTES && (message.data[0] as number) >= 0x80)
          return this.onBeaconEcho?.(hop, message.data);
        // A late answer (after the probe gave up) is not a violation: ignore it.
        const probing = this.probing;
        if (!probing || !message.data.equals(probing.nonce)) return;
        probing.answered[hop] = true;
        if (!probing.answered.includes(false)) probing.finish();
        return;
      }
      case RelayCommand.payStop: {
        if (message.streamId !== 0) throw new ProtocolError("PAY_STOP off stream 0");
        const reason = decodePayStop(message.data);
        this.mux.send(this.id, CellCommand.destroy, [Buffer.of(DestroyReason.payment)]);
        return this.fail(
          new CircuitError(
            DestroyReason.payment,
            `hop ${hop + 1} stopped serving this payer: ${payStopReasonName(reason)} (PAY_STOP reason ${reason})`,
            {
              hop,
            },
          ),
        );
      }
      case RelayCommand.connected:
      case RelayCommand.data:
      case RelayCommand.end:
      case RelayCommand.sendme: {
        if (hop !== last) throw new ProtocolError("stream message from a middle hop");
        this.streamCellsIn++;
        const opening = this.opening.get(message.streamId);
        const stream = this.streams.get(message.streamId);
        if (opening) {
          this.opening.delete(message.streamId);
          if (message.command === RelayCommand.connected) return opening.resolve();
          if (message.command !== RelayCommand.end) throw new ProtocolError("stream data before CONNECTED");
          const reason = parseStreamReason(message.data[0] ?? StreamReason.generalFailure);
          const error = new StreamOpenError(
            reason === StreamReason.done ? StreamReason.generalFailure : reason,
            `exit could not open the stream (reason ${reason})`,
          );
          stream?.abort(error);
          return opening.reject(error);
        }
        if (stream) {
          if (message.command === RelayCommand.connected) throw new ProtocolError("CONNECTED twice");
          return stream.receive(message.command, message.data);
        }
        if (this.closedStreams.has(message.streamId)) {
          // Crossed our END in flight: ignore; the exit's END means nothing more will come.
          if (message.command === RelayCommand.end) this.closedStreams.delete(message.streamId);
          return;
        }
        // An id we never opened (or forgot after CLOSED_STREAM_TTL_MS): CONNECTED cannot be a
        // race, so it is a violation; stray DATA/END/SENDME are dropped as before.
        if (message.command === RelayCommand.connected) throw new ProtocolError("CONNECTED for an unknown stream");
        return;
      }
      default:
        throw new ProtocolError(`relay command ${message.command} not accepted by a client`);
    }
  }

  private sendTo(hop: number, command: RelayCommand, streamId: number, data: readonly Buffer[]): boolean {
    if (this.error) return false;
    this.carried(
      hop,
      command === RelayCommand.payReceipt || command === RelayCommand.payLock || command === RelayCommand.payHello,
    );
    return this.mux.send(
      this.id,
      CellCommand.relay,
      wrapForward(this.hops, hop, [encodeRelayHeader(command, streamId), ...data]),
    );
  }

  /**
   * A relay cell crossed hops 0..`farthest` (a forward cell to hop `farthest`, or a backward one
   * from it): counts it for each paid hop, and sends a hop its receipt when one is due.
   */
  private carried(farthest: number, own = false): void {
    const payer = this.payer;
    if (!payer) return;
    for (let i = 0; i <= farthest && i < this.hops.length; i++) {
      const operator = payer.operators[i];
      if (!operator) continue;
      const waiting = this.beforeHello[i] ?? 0;
      if (waiting >= 0) this.beforeHello[i] = waiting + 1;
      else if (payer.channels.carried(operator, own)) this.sendReceipt(i, operator);
    }
  }

  /**
   * Every hop with cells not covered by a receipt yet gets one (traffic paused; the payer's own
   * messages since the last receipt do not count, see `PayerChannels.unsigned`).
   */
  private sendIdleReceipts(): void {
    const payer = this.payer;
    if (!payer || this.closed) return;
    for (let i = 0; i < this.hops.length; i++) {
      const operator = payer.operators[i];
      if (operator && payer.channels.unsigned(operator)) this.sendReceipt(i, operator);
    }
  }

  /**
   * Signs and sends hop `i` its PAY_HELLO (over the hop handshake's binding), then brings the hop
   * up to date: the hop carries a key only one receipt interval past its last receipt, and earlier
   * circuits may have left cells unreceipted. No receipt leaves for the hop before its hello.
   */
  private sendHello(i: number, operator: Address): void {
    const payer = this.payer;
    if (!payer) return;
    this.signing.add(i);
    payer.channels.hello(operator, this.bindings[i]!).then(
      (hello) => {
        this.signing.delete(i);
        if (this.closed) return;
        for (let n = this.beforeHello[i] ?? 0; n > 0; n--) payer.channels.carried(operator);
        this.beforeHello[i] = -1;
        this.sendTo(i, RelayCommand.payHello, 0, [encodePayHello(hello)]);
        if (payer.channels.unsigned(operator)) this.sendReceipt(i, operator);
        else this.sendLockIfDue(i);
      },
      () => this.signing.delete(i),
    );
  }

  private sendReceipt(i: number, operator: Address): void {
    if (!this.payer || this.signing.has(i) || this.beforeHello[i] !== -1) return;
    this.signing.add(i);
    const channels = this.payer.channels;
    channels.receipt(operator).then(
      (r) => {
        this.signing.delete(i);
        // Closed while it was signed: it never leaves, so its cells are not covered yet.
        if (this.closed) return channels.unsent(operator, r.cells);
        this.sendTo(i, RelayCommand.payReceipt, 0, [encodePayReceipt(r)]);
        this.sendLockIfDue(i);
      },
      () => this.signing.delete(i),
    );
  }

  /** Sends hop `i` a signed lock request when the payer's lock policy says its lock runs low. */
  private sendLockIfDue(i: number): void {
    const operator = this.payer?.operators[i];
    if (!operator || !this.payer) return;
    const channels = this.payer.channels;
    channels.lockDue(operator).then(
      (lock) => {
        if (!lock) return;
        // Closed while it was signed: it never leaves, and the next circuit asks again.
        if (this.closed) return channels.lockUnsent(operator, lock.nonce);
        this.sendTo(i, RelayCommand.payLock, 0, [encodePayLock(lock)]);
      },
      () => {},
    );
  }

  private allocateStreamId(): number {
    for (let tries = 0; tries < 0x10000; tries++) {
      const id = this.nextStreamId;
      this.nextStreamId = id >= 0xffff ? 1 : id + 1;
      if (!this.streams.has(id) && !this.closedStreams.has(id)) return id;
    }
    throw new StreamOpenError(StreamReason.generalFailure, "no free stream id on this circuit");
  }

  private rememberClosed(id: number, now = Date.now()): void {
    if (this.error) return;
    this.closedStreams.delete(id);
    this.closedStreams.set(id, now);
    // Oldest first: drop entries past their age, and the oldest beyond the bound.
    for (const [old, at] of this.closedStreams) {
      if (this.closedStreams.size <= CLOSED_STREAMS_MAX && now - at < CLOSED_STREAM_TTL_MS) break;
      this.closedStreams.delete(old);
    }
  }

  private wait(expect: Waiter["expect"], timeoutMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new CircuitError(DestroyReason.timeout, `no ${expect.toUpperCase()} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        expect,
        resolve: (body) => {
          clearTimeout(timer);
          resolve(body);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  private settle(body: Buffer): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve(body);
  }

  private fail(error: CircuitError): void {
    if (this.error) return;
    this.error = error;
    clearInterval(this.receiptTimer);
    this.mux.remove(this.id);
    this.waiter?.reject(error);
    this.waiter = undefined;
    this.probing?.finish();
    for (const o of this.opening.values()) o.reject(openRefusal(error));
    this.opening.clear();
    for (const s of [...this.streams.values()]) s.abort(error);
    this.streams.clear();
    for (const listener of this.closeListeners.splice(0)) listener(error);
  }
}

/**
 * A relay process's data plane: the link listener, the circuits through it and, on exits, the
 * target connections. Composition only; the layers below do the work.
 */
import type { StaticKeys } from "../crypto/keys.ts";
import { publicKeysOf } from "../crypto/keys.ts";
import type { RelayPublicKeys } from "../crypto/keys.ts";
import { Link } from "../link/link.ts";
import { listenForLinks } from "../link/listener.ts";
import type { AdmissionLimits, LinkListener } from "../link/listener.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { RelayCore } from "../circuit/relay.ts";
import type { OpenTarget, RelayCoreOptions, RelayLimits } from "../circuit/relay.ts";

export interface RelayNodeOptions {
  host: string;
  port: number;
  keys: StaticKeys;
  /** Present on exits: opens a connection to a target under the exit policy. */
  openTarget?: OpenTarget;
  limits?: Partial<RelayLimits>;
  handshakesPerSecond?: number;
  /** Link admission limits (link/listener.ts). */
  admission?: Partial<AdmissionLimits>;
  rekeyInterval?: number;
  logger?: Logger;
  /** Adversarial tests only (circuit/relay.ts): change a cell passed on, or return false to drop it. */
  tamperForward?: RelayCoreOptions["tamperForward"];
  /** In-band payment: the gate that counts and judges every payer (docs/settlement.md). */
  payments?: RelayCoreOptions["payments"];
  onLockRequest?: RelayCoreOptions["onLockRequest"];
  /** Another relay pushed an uptime attestation for this one (node/uptime.ts UptimeInbox). */
  onUptime?: RelayCoreOptions["onUptime"];
  /** Checks each PAY_HELLO's signature over its hop handshake (accounting/client-keys.ts). */
  checkPayHello?: RelayCoreOptions["checkPayHello"];
  metrics?: RelayCoreOptions["metrics"];
  /** EXTEND only to relays this check knows (mesh/known-relays.ts); unset: to any relay named. */
  isKnownRelay?: RelayCoreOptions["isKnownRelay"];
}

export interface RelayNode {
  readonly host: string;
  readonly port: number;
  readonly keys: RelayPublicKeys;
  readonly core: RelayCore;
  readonly listener: LinkListener;
  close(): Promise<void>;
}

export async function startRelay(options: RelayNodeOptions): Promise<RelayNode> {
  const log = options.logger ?? silentLogger;
  const core = new RelayCore({
    keys: options.keys,
    openTarget: options.openTarget,
    limits: options.limits,
    logger: log,
    rekeyInterval: options.rekeyInterval,
    tamperForward: options.tamperForward,
    payments: options.payments,
    onLockRequest: options.onLockRequest,
    onUptime: options.onUptime,
    checkPayHello: options.checkPayHello,
    metrics: options.metrics,
    isKnownRelay: options.isKnownRelay,
    connectLink: (host, port, relay) => Link.connect(host, port, relay, { rekeyInterval: options.rekeyInterval }),
  });
  const listener = await listenForLinks({
    host: options.host,
    port: options.port,
    keys: options.keys,
    handshakesPerSecond: options.handshakesPerSecond,
    admission: options.admission,
    rekeyInterval: options.rekeyInterval,
    logger: log,
    onLink: (link) => core.attach(link),
  });
  log.info("relay listening", {
    host: listener.address.host,
    port: listener.address.port,
    exit: options.openTarget !== undefined,
  });
  return {
    host: listener.address.host,
    port: listener.address.port,
    keys: publicKeysOf(options.keys),
    core,
    listener,
    close: async () => {
      core.close();
      await listener.close();
    },
  };
}

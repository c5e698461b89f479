/**
 * Where a node learns of relays besides a descriptor folder: bootstrap nodes that hand out signed
 * descriptors (gossip.ts), checked against the trust anchors the node is configured with — the
 * RelayerRegistry (registry-source.ts) and/or signers its configuration lists. A relay also
 * publishes its own signed descriptor to the bootstrap nodes, and signs it again before it expires.
 *
 * Everything here runs in the background: a bootstrap node that is down is logged and tried again
 * next round (every 30 s); the node serves meanwhile with what it has.
 */
import type { Address, LocalAccount } from "viem";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import type { DirectoryEntry } from "../node/directory.ts";
import {
  type DescriptorDomain,
  type DescriptorFields,
  type SignedNodeDescriptor,
  signNodeDescriptor,
} from "./descriptor.ts";
import { bootstrapAnchor, type DropReason, type TrustAnchor } from "./verify.ts";
import { pullDescriptors, pushDescriptors } from "./gossip.ts";
import { coalesce } from "./rounds.ts";
import { DescriptorStore } from "./store.ts";

/** How long a relay's own descriptor is valid; it signs a new one when half of it is left. */
export const OWN_DESCRIPTOR_VALIDITY_S = 24 * 3600;
/** Least time between rounds that `requestRound` starts (events, not the timer, ask for those). */
export const MIN_REQUESTED_ROUND_GAP_MS = 5_000;

export interface DescriptorSourcesOptions {
  domain: DescriptorDomain;
  /** Bootstrap nodes' base URLs ("http://10.0.0.5:7000"). */
  bootstrap: readonly string[];
  /** Signers vouched for by the configuration (offline trust). */
  trust?: readonly { signer: Address; operator?: Address }[];
  /** The registry as a trust anchor (consulted first). */
  registry?: TrustAnchor;
  /** This relay's descriptor, signed with `signer` and published to every bootstrap node. */
  publish?: { signer: LocalAccount; fields: () => Omit<DescriptorFields, "notBefore" | "notAfter"> };
  intervalMs?: number;
  /** Least time between rounds `requestRound` starts (default MIN_REQUESTED_ROUND_GAP_MS). */
  minRequestedGapMs?: number;
  /** Counts drops by reason (metrics: mesh_descriptors_dropped{reason}). */
  onDropped?: (reason: DropReason, count: number) => void;
  logger?: Logger;
}

export interface DescriptorSources {
  readonly store: DescriptorStore;
  /** The relays the bootstrap nodes told of, verified. */
  entries(): DirectoryEntry[];
  /**
   * A round now: publish ours, pull theirs, drop what is no longer valid. At most one round runs
   * and one waits: calls while one waits share it.
   */
  refresh(): Promise<void>;
  /**
   * Asks for a round because of an event anyone can cause (an EXTEND to an unknown relay): starts
   * one only if none started within MIN_REQUESTED_ROUND_GAP_MS; returns whether it did.
   */
  requestRound(): boolean;
  close(): Promise<void>;
}

/** Runs a first round (awaited: a node starts knowing what the bootstrap nodes know), then one every 30 s. */
export async function startDescriptorSources(options: DescriptorSourcesOptions): Promise<DescriptorSources> {
  const log = options.logger ?? silentLogger;
  const anchors: TrustAnchor[] = [
    ...(options.registry ? [options.registry] : []),
    ...(options.trust && options.trust.length > 0 ? [bootstrapAnchor(options.trust)] : []),
  ];
  const store = new DescriptorStore({
    context: (now) => ({ domain: options.domain, anchors, now }),
    logger: log,
  });
  let own: SignedNodeDescriptor | undefined;
  const counted: Partial<Record<DropReason, number>> = {};

  const sign = async () => {
    const p = options.publish;
    if (!p) return undefined;
    const now = Math.floor(Date.now() / 1000);
    if (own && own.notAfter - now > OWN_DESCRIPTOR_VALIDITY_S / 2) return own;
    own = await signNodeDescriptor(p.signer, options.domain, {
      ...p.fields(),
      notBefore: now - 60,
      notAfter: now - 60 + OWN_DESCRIPTOR_VALIDITY_S,
    });
    return own;
  };

  let startedAt = -Infinity;
  const refresh = coalesce(async () => {
    startedAt = Date.now();
    const mine = await sign();
    for (const url of options.bootstrap) {
      try {
        if (mine) {
          const answer = await pushDescriptors(url, [mine]);
          if (answer.accepted === 0)
            log.warn("a bootstrap node refused this relay's descriptor", {
              url,
              dropped: Object.keys(answer.dropped ?? {}).join(","),
            });
        }
        await pullDescriptors(store, url, log);
      } catch (error) {
        log.warn("bootstrap node not reachable; trying again next round", { url, error: (error as Error).message });
      }
    }
    await store.revalidate();
    for (const [reason, n] of Object.entries(store.dropped) as [DropReason, number][]) {
      const delta = n - (counted[reason] ?? 0);
      if (delta > 0) options.onDropped?.(reason, delta);
      counted[reason] = n;
    }
  });
  const quietly = () =>
    refresh().catch((error: Error) => log.warn("descriptor round failed", { error: error.message }));

  let round = quietly();
  await round;
  const timer = setInterval(() => {
    round = quietly();
  }, options.intervalMs ?? 30_000);
  timer.unref();
  return {
    store,
    entries: () => store.entries(),
    refresh: () => (round = refresh()),
    requestRound: () => {
      if (Date.now() - startedAt < (options.minRequestedGapMs ?? MIN_REQUESTED_ROUND_GAP_MS)) return false;
      startedAt = Date.now();
      round = quietly();
      return true;
    },
    close: async () => {
      clearInterval(timer);
      await round.catch(() => {});
    },
  };
}

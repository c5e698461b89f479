/**
 * `x0t bootstrap`: a bootstrap node (mesh/gossip.ts). It keeps the signed descriptors that relays
 * publish to it, if a trust anchor vouches for them (the signers listed with --trust, and/or the
 * RelayerRegistry with --registry), hands them to entries and relays, and exchanges them with its
 * peers every 30 s.
 * It needs no keys of its own: descriptors authenticate themselves.
 */
import { type Address, getAddress } from "viem";
import type { Logger } from "../log.ts";
import { type DescriptorDomain } from "../mesh/descriptor.ts";
import { bootstrapAnchor, type TrustAnchor } from "../mesh/verify.ts";
import { type GossipNode, startGossipNode } from "../mesh/gossip.ts";
import { DescriptorStore } from "../mesh/store.ts";

export interface BootstrapNodeOptions {
  host: string;
  port: number;
  domain: DescriptorDomain;
  /** Signers vouched for offline; may be empty when `registry` is set. */
  trust: readonly { signer: Address; operator?: Address }[];
  registry?: TrustAnchor;
  peers: readonly string[];
  intervalMs?: number;
  logger: Logger;
}

export async function startBootstrapNode(options: BootstrapNodeOptions): Promise<GossipNode> {
  const anchors: TrustAnchor[] = [
    ...(options.registry ? [options.registry] : []),
    ...(options.trust.length > 0
      ? [
          bootstrapAnchor(
            options.trust.map((t) => ({
              signer: getAddress(t.signer),
              ...(t.operator ? { operator: getAddress(t.operator) } : {}),
            })),
          ),
        ]
      : []),
  ];
  const store = new DescriptorStore({
    context: (now) => ({ domain: options.domain, anchors, now }),
    logger: options.logger,
  });
  return startGossipNode({
    host: options.host,
    port: options.port,
    store,
    peers: options.peers,
    intervalMs: options.intervalMs,
    logger: options.logger,
  });
}

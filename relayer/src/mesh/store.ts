/**
 * The descriptor store: the newest verified descriptor per operator, as a bootstrap node, a relay
 * or an entry holds them (gossip.ts carries them over HTTP, sources.ts runs the rounds).
 *
 * Besides what `verifyDescriptor` checks, the store keeps a signer that a bootstrap configuration
 * trusts **without an operator pin** to one operator at a time: it refuses a descriptor from such
 * a signer while the signer vouches for another operator in the store, and a descriptor for an
 * operator already held under a different signer. So one such signer cannot take over or evict
 * another operator, nor fill the store with invented ones. A pinned signer (the registry's record,
 * or a bootstrap entry naming the operator) is authoritative for its operator and replaces what an
 * unpinned one put there.
 */
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import type { DirectoryEntry } from "../node/directory.ts";
import { type SignedNodeDescriptor } from "./descriptor.ts";
import {
  DropReason,
  recheckNode,
  type Verdict,
  VerificationCache,
  type VerifiedNode,
  type VerifyContext,
  verifyDescriptor,
} from "./verify.ts";

/** Most operators a store keeps, and most descriptors in one gossip message. */
export const MAX_DESCRIPTORS = 2_000;

export interface DescriptorStoreOptions {
  /** The verification context at a given time (seconds): domain and trust anchors. */
  context: (nowSeconds: number) => VerifyContext;
  now?: () => number;
  /** Most operators kept (default MAX_DESCRIPTORS). */
  maxEntries?: number;
  logger?: Logger;
}

/** Drops by reason. */
export type DropCounts = Partial<Record<DropReason, number>>;

/** "unknown-signer=2,stale=1": drops as one log field. */
export function formatDrops(dropped: DropCounts): string {
  return Object.entries(dropped)
    .map(([reason, n]) => `${reason}=${n}`)
    .join(",");
}

/**
 * Verified descriptors, newest per operator. Each drop is counted by reason (`dropped`, the
 * mesh_descriptors_dropped metric) and logged at debug level: callers log one summary line per
 * batch (a hostile peer's 2,000 forgeries are one line, not 2,000).
 */
export class DescriptorStore {
  readonly #nodes = new Map<string, VerifiedNode>();
  /** Signer (lower case) → the operator key it vouches for in the store. */
  readonly #bySigner = new Map<string, string>();
  readonly #context: DescriptorStoreOptions["context"];
  readonly #now: () => number;
  readonly #max: number;
  readonly #log: Logger;
  readonly #cache: VerificationCache;
  /** Drops by reason since start (a counter for metrics). */
  readonly dropped: DropCounts = {};
  accepted = 0;

  constructor(options: DescriptorStoreOptions) {
    this.#context = options.context;
    this.#now = options.now ?? Date.now;
    this.#max = options.maxEntries ?? MAX_DESCRIPTORS;
    this.#log = options.logger ?? silentLogger;
    this.#cache = new VerificationCache(2 * this.#max + 64);
  }

  /** Signatures recovered since start: a descriptor seen before is not checked again. */
  get signaturesChecked(): number {
    return this.#cache.recovered;
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }

  #drop(reason: DropReason, detail: string, source: string, operator: unknown): Verdict {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
    this.#log.debug("descriptor dropped", {
      reason,
      detail,
      source,
      operator: typeof operator === "string" ? operator.slice(0, 42) : undefined,
    });
    return { ok: false, reason, detail };
  }

  /**
   * Verifies `value` and keeps it if it is the newest descriptor of its operator and the binding
   * rules allow it. The descriptor already held is reported accepted; everything else that is not
   * kept (stale, store full, a conflicting signer) is a drop with its reason.
   */
  async offer(value: unknown, source: string): Promise<Verdict> {
    const verdict = await verifyDescriptor(value, this.#context(this.#seconds()), this.#cache);
    const claimed = (value as { operator?: unknown } | null)?.operator;
    if (!verdict.ok) return this.#drop(verdict.reason, verdict.detail, source, claimed);
    const node = verdict.node;
    const d = node.descriptor;
    const key = d.operator.toLowerCase();
    const signer = node.signer.toLowerCase();
    const held = this.#nodes.get(key);
    if (held && held.descriptor.signature === d.signature) return verdict;
    const sameSigner = held !== undefined && held.signer.toLowerCase() === signer;
    if (!node.pinned) {
      const vouched = this.#bySigner.get(signer);
      if (vouched !== undefined && vouched !== key)
        return this.#drop(
          DropReason.signerBound,
          `signer ${node.signer} is trusted without an operator pin and already vouches for ${vouched}`,
          source,
          d.operator,
        );
      if (held && !sameSigner)
        return this.#drop(
          DropReason.operatorHeld,
          `operator ${d.operator} is held under signer ${held.signer}; pin it to ${node.signer} to move it`,
          source,
          d.operator,
        );
    }
    // A pinned signer takes its operator from an unpinned one whatever the dates; otherwise the
    // newest descriptor (highest notBefore) wins.
    const overrides = held !== undefined && node.pinned && !held.pinned && !sameSigner;
    if (held && !overrides && held.descriptor.notBefore >= d.notBefore)
      return this.#drop(
        DropReason.stale,
        `notBefore ${d.notBefore} is not after the held descriptor's ${held.descriptor.notBefore}`,
        source,
        d.operator,
      );
    if (!held && this.#nodes.size >= this.#max)
      return this.#drop(
        DropReason.storeFull,
        `the store holds its maximum of ${this.#max} operators`,
        source,
        d.operator,
      );
    if (held) this.#forget(key, held);
    this.#nodes.set(key, node);
    this.#bySigner.set(signer, key);
    this.accepted++;
    this.#log.debug("descriptor accepted", { operator: d.operator, nickname: d.nickname, anchor: node.anchor, source });
    return verdict;
  }

  #forget(key: string, node: VerifiedNode): void {
    this.#nodes.delete(key);
    const signer = node.signer.toLowerCase();
    if (this.#bySigner.get(signer) === key) this.#bySigner.delete(signer);
  }

  /**
   * Judges every held descriptor again — still valid, still vouched for (stake may have gone) —
   * without checking its keys and signature again, and drops those that fail; returns how many went.
   */
  async revalidate(): Promise<number> {
    const gone: DropCounts = {};
    let count = 0;
    for (const [key, node] of [...this.#nodes]) {
      const verdict = await recheckNode(node, this.#context(this.#seconds()));
      if (verdict.ok) continue;
      this.#forget(key, node);
      this.dropped[verdict.reason] = (this.dropped[verdict.reason] ?? 0) + 1;
      gone[verdict.reason] = (gone[verdict.reason] ?? 0) + 1;
      count++;
    }
    if (count > 0) this.#log.info("descriptors withdrawn", { count, reasons: formatDrops(gone) });
    return count;
  }

  /** The signed descriptors held, still valid now. */
  descriptors(): SignedNodeDescriptor[] {
    const now = this.#seconds();
    return [...this.#nodes.values()].filter((n) => n.descriptor.notAfter >= now).map((n) => n.descriptor);
  }

  /** Directory entries for route choice (what `startEntry({ directory })` reads). */
  entries(): DirectoryEntry[] {
    const now = this.#seconds();
    return [...this.#nodes.values()].filter((n) => n.descriptor.notAfter >= now).map((n) => n.entry);
  }

  get size(): number {
    return this.#nodes.size;
  }
}

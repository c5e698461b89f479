/**
 * Whether a descriptor from an untrusted source is accepted. A descriptor is self-authenticating:
 * whoever carries it (a bootstrap node, a peer, a file) needs no trust. It is accepted only if a
 * trust anchor vouches for the signer (docs/self-healing.md): the on-chain registry record of
 * `operator` (same signer, same keys hash, same endpoint and region, stake active), or, offline,
 * a bootstrap configuration that lists the signer. Everything else is dropped with a `DropReason`.
 */
import { createHash } from "node:crypto";
import { type Address, type Hex, recoverTypedDataAddress } from "viem";
import { type DirectoryEntry, DescriptorError } from "../node/directory.ts";
import {
  checkFields,
  CLOCK_SKEW_S,
  type DescriptorDomain,
  entryOf,
  MalformedDescriptor,
  MAX_VALIDITY_S,
  NODE_DESCRIPTOR_TYPES,
  type SignedNodeDescriptor,
  typedMessage,
} from "./descriptor.ts";

/** Why a descriptor was dropped; each value is a log field and a counter name. */
export const DropReason = {
  malformed: "malformed",
  badKeys: "bad-keys",
  notYetValid: "not-yet-valid",
  expired: "expired",
  validityTooLong: "validity-too-long",
  badSignature: "bad-signature",
  unregistered: "unregistered",
  wrongSigner: "wrong-signer",
  keysMismatch: "keys-mismatch",
  endpointMismatch: "endpoint-mismatch",
  regionMismatch: "region-mismatch",
  unstaked: "unstaked",
  unknownSigner: "unknown-signer",
  trustUnavailable: "trust-unavailable",
  stale: "stale",
  /** A signer trusted without an operator pin already vouches for another operator in the store. */
  signerBound: "signer-bound",
  /** The operator is held under another signer, and no anchor pins it to this one. */
  operatorHeld: "operator-held",
  storeFull: "store-full",
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

/** What a trust anchor knows of an operator's node. Absent fields are not checked. */
export interface NodeRecord {
  operator: Address;
  signer: Address;
  keysHash?: Hex;
  endpoint?: string;
  region?: string;
  /** Stake at or above the minimum now. */
  active: boolean;
  /**
   * The anchor binds this signer to this operator: the registry's record, or a bootstrap entry
   * that names the operator. An unpinned signer is trusted for one operator at a time (the store
   * enforces it), so it can neither take over nor evict another operator.
   */
  pinned: boolean;
}

export type Lookup =
  | { kind: "record"; record: NodeRecord }
  /** The anchor is sure the operator has no node. */
  | { kind: "none" }
  /** The anchor cannot say (not synced yet, RPC down with nothing cached). */
  | { kind: "unavailable" };

/** A source of trust: the registry (registry-source.ts) or a bootstrap configuration. */
export interface TrustAnchor {
  readonly kind: "registry" | "bootstrap";
  /** What the anchor knows of `operator`'s node, whose descriptor `signer` signed. */
  lookup(operator: Address, signer: Address): Lookup | Promise<Lookup>;
}

/**
 * The offline anchor: a descriptor signed by a signer the bootstrap configuration lists (and, if
 * the entry pins one, for that operator) is trusted. Keys, endpoint and stake cannot be checked
 * without the chain; an unlisted signer is "unavailable" here, so a registry anchor after it may
 * still answer. A signer listed without an operator is not pinned: the store keeps it to one
 * operator (store.ts).
 */
export function bootstrapAnchor(trusted: readonly { signer: Address; operator?: Address }[]): TrustAnchor {
  const bySigner = new Map(trusted.map((t) => [t.signer.toLowerCase(), t]));
  return {
    kind: "bootstrap",
    lookup: (operator, signer) => {
      const t = bySigner.get(signer.toLowerCase());
      if (!t || (t.operator !== undefined && t.operator.toLowerCase() !== operator.toLowerCase()))
        return { kind: "unavailable" };
      return { kind: "record", record: { operator, signer: t.signer, active: true, pinned: t.operator !== undefined } };
    },
  };
}

/** The node a verified descriptor describes. */
export interface VerifiedNode {
  descriptor: SignedNodeDescriptor;
  entry: DirectoryEntry;
  signer: Address;
  /** Which anchor vouched for it. */
  anchor: TrustAnchor["kind"];
  /** Whether that anchor binds the signer to the operator (NodeRecord.pinned). */
  pinned: boolean;
}

export type Verdict = { ok: true; node: VerifiedNode } | { ok: false; reason: DropReason; detail: string };

export interface VerifyContext {
  domain: DescriptorDomain;
  /** Consulted in order; the first that can answer decides (registry before bootstrap). */
  anchors: readonly TrustAnchor[];
  /** Now, unix seconds. */
  now: number;
  maxValiditySeconds?: number;
}

const drop = (reason: DropReason, detail: string): Verdict => ({ ok: false, reason, detail });

/**
 * What a descriptor's costly checks found — the keys hash to `keysHash` (an ML-KEM key check) and
 * the signer the signature recovers to — keyed by a hash of the whole descriptor and its domain,
 * so that the same descriptor pulled every round, or revalidated, is not checked again. Only what
 * cannot change is cached; validity and trust are judged every time. Bounded, least recently used
 * out first.
 */
export class VerificationCache {
  readonly #found = new Map<string, { entry: DirectoryEntry; signer: Address }>();
  readonly #max: number;
  /** Signatures recovered (cache misses that got that far), for tests and metrics. */
  recovered = 0;

  constructor(max = 4_096) {
    this.#max = max;
  }

  static keyOf(d: SignedNodeDescriptor, domain: DescriptorDomain): string {
    return createHash("sha256")
      .update(JSON.stringify([domain, d]))
      .digest("base64");
  }

  get(key: string) {
    const found = this.#found.get(key);
    if (found) {
      this.#found.delete(key);
      this.#found.set(key, found);
    }
    return found;
  }

  set(key: string, value: { entry: DirectoryEntry; signer: Address }): void {
    this.#found.set(key, value);
    if (this.#found.size > this.#max) this.#found.delete(this.#found.keys().next().value as string);
  }
}

/** Validity window of `d` at `ctx.now`. */
function checkValidity(d: SignedNodeDescriptor, ctx: VerifyContext): Verdict | undefined {
  if (d.notBefore > ctx.now + CLOCK_SKEW_S) return drop(DropReason.notYetValid, `notBefore ${d.notBefore}`);
  if (d.notAfter < ctx.now - CLOCK_SKEW_S) return drop(DropReason.expired, `notAfter ${d.notAfter}`);
  const maxValidity = ctx.maxValiditySeconds ?? MAX_VALIDITY_S;
  if (d.notAfter - d.notBefore > maxValidity)
    return drop(DropReason.validityTooLong, `${d.notAfter - d.notBefore} s > ${maxValidity} s`);
  return undefined;
}

/** Whether an anchor vouches for `signer` as the signer of `d.operator`'s node. */
async function checkTrust(
  d: SignedNodeDescriptor,
  entry: DirectoryEntry,
  signer: Address,
  ctx: VerifyContext,
): Promise<Verdict> {
  for (const anchor of ctx.anchors) {
    const found = await anchor.lookup(d.operator, signer);
    if (found.kind === "unavailable") continue;
    if (found.kind === "none") return drop(DropReason.unregistered, `operator ${d.operator}`);
    const r = found.record;
    if (r.signer.toLowerCase() !== signer.toLowerCase())
      return drop(DropReason.wrongSigner, `signed by ${signer}, ${anchor.kind} says ${r.signer}`);
    if (r.keysHash !== undefined && r.keysHash.toLowerCase() !== d.keysHash)
      return drop(DropReason.keysMismatch, `registry keysHash ${r.keysHash}`);
    if (r.endpoint !== undefined && r.endpoint !== d.endpoint)
      return drop(DropReason.endpointMismatch, `registry endpoint ${r.endpoint}`);
    if (r.region !== undefined && r.region !== d.region)
      return drop(DropReason.regionMismatch, `registry region ${r.region}`);
    if (!r.active) return drop(DropReason.unstaked, `operator ${d.operator} below the minimum stake`);
    return { ok: true, node: { descriptor: d, entry, signer, anchor: anchor.kind, pinned: r.pinned } };
  }
  if (ctx.anchors.some((a) => a.kind === "registry"))
    return drop(DropReason.trustUnavailable, `the registry cannot be read yet and no bootstrap entry lists ${signer}`);
  return drop(DropReason.unknownSigner, `signer ${signer} is not listed by the bootstrap configuration`);
}

/**
 * Checks a descriptor from an untrusted source: shape, keys, validity, signature, trust. With a
 * cache, a descriptor seen before skips the key and signature checks.
 */
export async function verifyDescriptor(
  value: unknown,
  ctx: VerifyContext,
  cache?: VerificationCache,
): Promise<Verdict> {
  let d: SignedNodeDescriptor;
  try {
    d = checkFields(value);
  } catch (error) {
    if (error instanceof MalformedDescriptor) return drop(DropReason.malformed, error.message);
    throw error;
  }
  const key = cache ? VerificationCache.keyOf(d, ctx.domain) : undefined;
  const known = key ? cache?.get(key) : undefined;
  let entry: DirectoryEntry;
  try {
    entry = known?.entry ?? entryOf(d);
  } catch (error) {
    if (error instanceof DescriptorError) return drop(DropReason.badKeys, error.message);
    throw error;
  }
  const invalid = checkValidity(d, ctx);
  if (invalid) return invalid;
  let signer = known?.signer;
  if (!signer) {
    try {
      signer = await recoverTypedDataAddress({
        domain: ctx.domain,
        types: NODE_DESCRIPTOR_TYPES,
        primaryType: "NodeDescriptor",
        message: typedMessage(d),
        signature: d.signature,
      });
    } catch (error) {
      return drop(DropReason.badSignature, (error as Error).message.split("\n")[0] ?? "unrecoverable");
    }
    if (cache && key) {
      cache.recovered++;
      cache.set(key, { entry, signer });
    }
  }
  return checkTrust(d, entry, signer, ctx);
}

/**
 * Judges a node verified before again, without its key and signature checks (they cannot change):
 * is it still valid now, and does an anchor still vouch for its signer (stake, registry record)?
 */
export function recheckNode(node: VerifiedNode, ctx: VerifyContext): Promise<Verdict> {
  const invalid = checkValidity(node.descriptor, ctx);
  if (invalid) return Promise.resolve(invalid);
  return checkTrust(node.descriptor, node.entry, node.signer, ctx);
}

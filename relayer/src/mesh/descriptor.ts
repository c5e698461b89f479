/**
 * Signed node descriptors: what a relay says about itself (where it listens, its static public
 * keys, whether it exits and under which policy, its bandwidth, its operator) for a bounded time,
 * signed with its node signer key as EIP-712 typed data in the RelayerRegistry's domain (so a
 * descriptor is bound to one chain and one registry and cannot be replayed as any other message).
 *
 * A descriptor is self-authenticating: whoever carries it (a bootstrap node, a peer, a file) needs
 * no trust. It is accepted only if a trust anchor vouches for the signer (docs/self-healing.md):
 * the on-chain registry record of `operator` (same signer, same keys hash, same endpoint and region,
 * stake active), or, offline, a bootstrap configuration that lists the signer. Everything else is
 * dropped with a `DropReason`.
 */
import { createHash } from "node:crypto";
import {
  type Address,
  getAddress,
  type Hex,
  isAddress,
  type LocalAccount,
  recoverTypedDataAddress,
  stringToHex,
} from "viem";
import { type DirectoryEntry, DescriptorError, parseDescriptor } from "../node/directory.ts";
import { relayerRegistryDomain } from "../chain/registry.ts";
import { embeddedIPv4, parseIPv4, parseIPv6 } from "../wire/ip.ts";

export type DescriptorDomain = ReturnType<typeof relayerRegistryDomain>;
export { relayerRegistryDomain as descriptorDomain };

/** Field names and types of the signed message; changing them is a new `version`. */
export const NODE_DESCRIPTOR_TYPES = {
  NodeDescriptor: [
    { name: "operator", type: "address" },
    { name: "nickname", type: "string" },
    { name: "endpoint", type: "string" },
    { name: "region", type: "bytes2" },
    { name: "keysHash", type: "bytes32" },
    { name: "exit", type: "bool" },
    { name: "exitPolicy", type: "string" },
    { name: "bandwidth", type: "uint64" },
    { name: "notBefore", type: "uint64" },
    { name: "notAfter", type: "uint64" },
  ],
} as const;

export const DESCRIPTOR_VERSION = 1;
/** Longest validity a descriptor may claim: a relay re-signs at least this often. */
export const MAX_VALIDITY_S = 7 * 24 * 3600;
/** Clock difference tolerated between signer and verifier. */
export const CLOCK_SKEW_S = 60;
const MAX_NICKNAME = 32;
const MAX_ENDPOINT = 128; // RelayerRegistry.MAX_ENDPOINT_LENGTH
const MAX_EXIT_POLICY = 256;
const MAX_SIGNATURE = 200;
/** base64 of the 1,184-byte ML-KEM-768 encapsulation key. */
const MLKEM_BASE64 = /^[A-Za-z0-9+/]{1579}=$/;
/**
 * Most bytes a descriptor that passes `checkFields` takes as JSON (UTF-8): the fixed-form fields
 * (addresses, hashes, keys, the endpoint, the signature, numbers) take at most ~2.3 KB, and the
 * two free-text fields at most 6 bytes per UTF-16 unit ("\u0000" escapes): 6 × (32 + 256). A test
 * serialises the worst case against it; gossip bodies are sized from it.
 */
export const MAX_DESCRIPTOR_JSON_BYTES = 4_608;

/** A descriptor as it travels (JSON): every field but `version` and the keys is signed. */
export interface SignedNodeDescriptor {
  version: typeof DESCRIPTOR_VERSION;
  operator: Address;
  /** A display label (logs, the chaos harness); identity is the operator. */
  nickname: string;
  /** "a.b.c.d:port" or "[v6]:port" (an IP address, not a name), byte for byte as in the registry record. */
  endpoint: string;
  /** ISO 3166-1 alpha-2, upper case. */
  region: string;
  /** 32-byte X25519 public key, hex. */
  x25519: string;
  /** 1,184-byte ML-KEM-768 encapsulation key, base64. */
  mlkem: string;
  /** 0x + sha256(x25519 || mlkem): binds the two keys above into the signature. */
  keysHash: Hex;
  exit: boolean;
  /** A summary such as "reject private; accept *:80,443" (informative, <= 256 bytes). */
  exitPolicy: string;
  /** Advertised bandwidth, bytes per second. */
  bandwidth: number;
  /** Validity, unix seconds. */
  notBefore: number;
  notAfter: number;
  signature: Hex;
}

export type DescriptorFields = Omit<SignedNodeDescriptor, "version" | "signature">;

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

/** "host:port" / "[v6]:port" → parts, or undefined. */
export function splitEndpoint(endpoint: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(endpoint);
  const port = Number(m?.[3]);
  if (!m || !(port > 0 && port < 65536)) return undefined;
  return { host: (m[1] ?? m[2]) as string, port };
}

/**
 * Why `host` (an endpoint's host, without brackets) cannot be advertised in a signed descriptor, or
 * undefined. It must be an IP address: the route planner's network-prefix rule needs one (a host
 * name would be its own "network" and could sit next to any address), and the wildcard addresses
 * (0.0.0.0, ::, ::ffff:0.0.0.0) name no reachable host.
 */
export function advertisedHostProblem(host: string): string | undefined {
  const bytes = parseIPv4(host) ?? parseIPv6(host);
  if (!bytes) return "an IP address (a host name has no network prefix to check)";
  const v4 = bytes.length === 16 ? embeddedIPv4(bytes) : undefined;
  if (bytes.every((b) => b === 0) || v4 === "0.0.0.0") return "a reachable IP address, not the wildcard 0.0.0.0 or ::";
  return undefined;
}

function typedMessage(d: DescriptorFields) {
  return {
    operator: d.operator,
    nickname: d.nickname,
    endpoint: d.endpoint,
    region: stringToHex(d.region, { size: 2 }),
    keysHash: d.keysHash,
    exit: d.exit,
    exitPolicy: d.exitPolicy,
    bandwidth: BigInt(d.bandwidth),
    notBefore: BigInt(d.notBefore),
    notAfter: BigInt(d.notAfter),
  };
}

/** Signs `fields` with the node's signer key. */
export async function signNodeDescriptor(
  signer: LocalAccount,
  domain: DescriptorDomain,
  fields: DescriptorFields,
): Promise<SignedNodeDescriptor> {
  const checked = checkFields({ ...fields, version: DESCRIPTOR_VERSION, signature: "0x" });
  const signature = await signer.signTypedData({
    domain,
    types: NODE_DESCRIPTOR_TYPES,
    primaryType: "NodeDescriptor",
    message: typedMessage(checked),
  });
  return { ...checked, signature };
}

class Malformed extends Error {}

/** Shape and bounds of an untrusted descriptor; throws Malformed naming the field. */
function checkFields(value: unknown): SignedNodeDescriptor {
  const fail = (field: string, expected: string): never => {
    throw new Malformed(`"${field}" must be ${expected}`);
  };
  if (typeof value !== "object" || value === null) return fail("(root)", "an object");
  const d = value as Record<string, unknown>;
  const str = (k: string, max: number) =>
    typeof d[k] === "string" && (d[k] as string).length <= max ? (d[k] as string) : fail(k, `a string <= ${max}`);
  const int = (k: string) =>
    typeof d[k] === "number" && Number.isSafeInteger(d[k]) && (d[k] as number) >= 0
      ? (d[k] as number)
      : fail(k, "a non-negative integer");
  if (d.version !== DESCRIPTOR_VERSION) fail("version", String(DESCRIPTOR_VERSION));
  const operator = str("operator", 42);
  if (!isAddress(operator, { strict: false })) fail("operator", "an address");
  const endpoint = str("endpoint", MAX_ENDPOINT);
  const at = splitEndpoint(endpoint);
  if (!at || /[A-Z]/.test(endpoint)) return fail("endpoint", "host:port in lower case");
  const hostProblem = advertisedHostProblem(at.host);
  if (hostProblem) fail("endpoint", hostProblem);
  if (endpoint.startsWith("[") !== at.host.includes(":")) fail("endpoint", "[v6]:port for IPv6, a.b.c.d:port for IPv4");
  const region = str("region", 2);
  if (!/^[A-Z]{2}$/.test(region)) fail("region", "two capital letters");
  const keysHash = str("keysHash", 66);
  if (!/^0x[0-9a-f]{64}$/.test(keysHash)) fail("keysHash", "0x and 64 lower-case hex digits");
  const signature = str("signature", MAX_SIGNATURE);
  if (!/^0x([0-9a-f]{2})*$/i.test(signature)) fail("signature", "hex");
  if (typeof d.exit !== "boolean") fail("exit", "true or false");
  const out: SignedNodeDescriptor = {
    version: DESCRIPTOR_VERSION,
    operator: getAddress(operator),
    nickname: str("nickname", MAX_NICKNAME),
    endpoint,
    region,
    x25519: str("x25519", 64),
    mlkem: MLKEM_BASE64.test(str("mlkem", 1580)) ? (d.mlkem as string) : fail("mlkem", "1,184 bytes in base64"),
    keysHash: keysHash as Hex,
    exit: d.exit as boolean,
    exitPolicy: str("exitPolicy", MAX_EXIT_POLICY),
    bandwidth: int("bandwidth"),
    notBefore: int("notBefore"),
    notAfter: int("notAfter"),
    signature: signature as Hex,
  };
  if (out.notAfter <= out.notBefore) fail("notAfter", "after notBefore");
  return out;
}

/** The directory entry of a descriptor (keys checked against its keys hash). */
function entryOf(d: SignedNodeDescriptor): DirectoryEntry {
  const at = splitEndpoint(d.endpoint) as { host: string; port: number };
  const entry = parseDescriptor(
    {
      name: d.nickname || d.operator.toLowerCase(),
      host: at.host,
      port: at.port,
      x25519: d.x25519,
      mlkem: d.mlkem,
      keysHash: d.keysHash,
      exit: d.exit,
      region: d.region,
      operator: d.operator,
    },
    `descriptor of ${d.operator}`,
  );
  return { ...entry, bandwidth: d.bandwidth, notAfter: d.notAfter };
}

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
    if (error instanceof Malformed) return drop(DropReason.malformed, error.message);
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

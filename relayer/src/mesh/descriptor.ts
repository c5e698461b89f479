/**
 * Signed node descriptors: what a relay says about itself (where it listens, its static public
 * keys, whether it exits and under which policy, its bandwidth, its operator) for a bounded time,
 * signed with its node signer key as EIP-712 typed data in the RelayerRegistry's domain (so a
 * descriptor is bound to one chain and one registry and cannot be replayed as any other message).
 *
 * This file is the format: fields, bounds, signing, the directory entry a descriptor becomes.
 * Whether a descriptor is accepted — signature, validity, a trust anchor vouching for its signer —
 * is verify.ts.
 */
import { type Address, getAddress, type Hex, isAddress, type LocalAccount, stringToHex } from "viem";
import { type DirectoryEntry, parseDescriptor } from "../node/directory.ts";
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

/** The EIP-712 message of `d`. */
export function typedMessage(d: DescriptorFields) {
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

/** A descriptor whose shape or bounds are wrong; the message names the field. */
export class MalformedDescriptor extends Error {
  override name = "MalformedDescriptor";
}

/** Shape and bounds of an untrusted descriptor; throws MalformedDescriptor naming the field. */
export function checkFields(value: unknown): SignedNodeDescriptor {
  const fail = (field: string, expected: string): never => {
    throw new MalformedDescriptor(`"${field}" must be ${expected}`);
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

/** The directory entry of a descriptor (keys checked against its keys hash; throws DescriptorError). */
export function entryOf(d: SignedNodeDescriptor): DirectoryEntry {
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

/** Shared fixtures of the mesh tests: relay identities and signed descriptors. */
import type { Address, LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { generateStaticKeys, initCrypto, type StaticKeys } from "../../relayer/src/crypto/keys.ts";
import {
  type DescriptorDomain,
  type DescriptorFields,
  descriptorDomain,
  type SignedNodeDescriptor,
  signNodeDescriptor,
} from "../../relayer/src/mesh/descriptor.ts";
import type { DirectoryEntry } from "../../relayer/src/node/directory.ts";

export const TEST_DOMAIN: DescriptorDomain = descriptorDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3");

export interface Identity {
  keys: StaticKeys;
  signer: LocalAccount;
  operator: Address;
}

export async function identity(operator?: Address): Promise<Identity> {
  await initCrypto();
  return {
    keys: generateStaticKeys(),
    signer: privateKeyToAccount(generatePrivateKey()),
    operator: operator ?? privateKeyToAccount(generatePrivateKey()).address,
  };
}

/** Descriptor fields for `id`, valid for an hour from `now` (unix seconds). */
export function fieldsOf(id: Identity, now: number, overrides: Partial<DescriptorFields> = {}): DescriptorFields {
  return {
    operator: id.operator,
    nickname: "relay",
    endpoint: "127.0.0.1:9001",
    region: "DE",
    x25519: id.keys.x25519.publicKey.toString("hex"),
    mlkem: Buffer.from(id.keys.mlkemPublic).toString("base64"),
    keysHash: `0x${id.keys.keysHash.toString("hex")}`,
    exit: true,
    exitPolicy: "reject private; accept *:*",
    bandwidth: 10_000_000,
    notBefore: now - 10,
    notAfter: now + 3600,
    ...overrides,
  };
}

export function sign(
  id: Identity,
  now: number,
  overrides: Partial<DescriptorFields> = {},
  domain = TEST_DOMAIN,
): Promise<SignedNodeDescriptor> {
  return signNodeDescriptor(id.signer, domain, fieldsOf(id, now, overrides));
}

/** A directory entry for route-choice tests (keys are never used by the planner but for identity). */
export function relayEntry(
  name: string,
  host: string,
  extra: Partial<Pick<DirectoryEntry, "region" | "operator" | "exit">> = {},
): DirectoryEntry {
  const hash = Buffer.alloc(32);
  hash.write(name.padEnd(32, "-").slice(0, 32));
  return {
    name,
    host,
    port: 9001,
    keys: { x25519: Buffer.alloc(32), mlkem: Buffer.alloc(1184), keysHash: hash },
    exit: extra.exit ?? false,
    region: extra.region,
    ...(extra.operator ? { operator: extra.operator } : {}),
  };
}

/**
 * Descriptors checked against the real RelayerRegistry on the in-process EVM: the registry source
 * lists and follows the registry, and a forged, unregistered, mis-keyed, moved, expired or unstaked
 * descriptor is refused with its reason. The checkpoint survives a restart and an RPC outage.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { type Address, createPublicClient, custom, getAddress, type LocalAccount, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { generateStaticKeys, initCrypto, type StaticKeys } from "../../relayer/src/crypto/keys.ts";
import { type DescriptorFields, signNodeDescriptor } from "../../relayer/src/mesh/descriptor.ts";
import { DropReason, type TrustAnchor, verifyDescriptor } from "../../relayer/src/mesh/verify.ts";
import { pushDescriptors } from "../../relayer/src/mesh/gossip.ts";
import { RegistrySource } from "../../relayer/src/mesh/registry-source.ts";
import { silentLogger } from "../../relayer/src/log.ts";
import { startBootstrapNode } from "../../relayer/src/node/bootstrap.ts";
import {
  connect,
  deployProtocol,
  fund,
  MIN_STAKE,
  type Protocol,
  region,
  signerConsent,
  type Wallet,
} from "../helpers/protocol.js";

interface Relay {
  wallet: Wallet;
  operator: Address;
  signer: LocalAccount;
  keys: StaticKeys;
  endpoint: string;
}

describe("mesh: descriptors against the RelayerRegistry", async () => {
  const connection = await connect();
  const { networkHelpers } = connection;
  let p: Protocol;
  let dir: string;
  let relays: Relay[];
  let restore: () => Promise<void>;
  let client: PublicClient;

  const register = async (wallet: Wallet, endpoint: string): Promise<Relay> => {
    const signer = privateKeyToAccount(generatePrivateKey());
    const keys = generateStaticKeys();
    const operator = getAddress(wallet.account.address);
    await fund(p, operator, MIN_STAKE);
    await p.token.write.approve([p.registry.address, MIN_STAKE], { account: wallet.account });
    await p.registry.write.register(
      [
        endpoint,
        region("DE"),
        `0x${keys.keysHash.toString("hex")}`,
        signer.address,
        await signerConsent(p, signer, operator),
        MIN_STAKE,
      ],
      { account: wallet.account },
    );
    return { wallet, operator, signer, keys, endpoint };
  };

  const chainNow = async () => Number(await networkHelpers.time.latest());
  const fields = (r: Relay, now: number, extra: Partial<DescriptorFields> = {}): DescriptorFields => ({
    operator: r.operator,
    nickname: r.endpoint.split(":")[1] ?? "",
    endpoint: r.endpoint,
    region: "DE",
    x25519: r.keys.x25519.publicKey.toString("hex"),
    mlkem: Buffer.from(r.keys.mlkemPublic).toString("base64"),
    keysHash: `0x${r.keys.keysHash.toString("hex")}`,
    exit: false,
    exitPolicy: "none",
    bandwidth: 5_000_000,
    notBefore: now - 10,
    notAfter: now + 3_600,
    ...extra,
  });
  const verify = async (value: unknown, anchors: TrustAnchor[], now?: number) =>
    verifyDescriptor(value, { domain: p.registryDomain, anchors, now: now ?? (await chainNow()) });

  before(async () => {
    await initCrypto();
    dir = await mkdtemp(join(tmpdir(), "x0t-mesh-registry-"));
    p = await deployProtocol(connection);
    client = p.publicClient as unknown as PublicClient;
    relays = [await register(p.wallets[3]!, "127.0.0.1:9101"), await register(p.wallets[4]!, "127.0.0.2:9102")];
    const snapshot = await networkHelpers.takeSnapshot();
    restore = () => snapshot.restore();
  });
  beforeEach(async () => restore());
  after(async () => rm(dir, { recursive: true, force: true }));

  it("accepts a staked relay's descriptor and refuses every kind of bad one with its reason", async () => {
    const source = new RegistrySource({ client, registry: p.registry.address });
    assert.equal(source.lookup(relays[0]!.operator).kind, "unavailable", "before the first sync");
    await source.syncOnce();
    const anchors = [source];
    const now = await chainNow();
    const [a, b] = relays as [Relay, Relay];
    const good = await signNodeDescriptor(a.signer, p.registryDomain, fields(a, now));
    const v = await verify(good, anchors);
    assert.ok(v.ok, v.ok ? "" : `${v.reason}: ${v.detail}`);
    assert.equal(v.node.anchor, "registry");
    assert.equal(v.node.entry.operator, a.operator.toLowerCase());

    const stranger = privateKeyToAccount(generatePrivateKey());
    const otherKeys = generateStaticKeys();
    const cases: [string, Promise<unknown>, DropReason][] = [
      [
        "forged (signed by a key that is not the node's signer)",
        signNodeDescriptor(stranger, p.registryDomain, fields(a, now)),
        DropReason.wrongSigner,
      ],
      [
        "b's signer claiming a's node",
        signNodeDescriptor(b.signer, p.registryDomain, fields(a, now)),
        DropReason.wrongSigner,
      ],
      [
        "unregistered operator",
        signNodeDescriptor(stranger, p.registryDomain, {
          ...fields(a, now),
          operator: getAddress(p.wallets[6]!.account.address),
        }),
        DropReason.unregistered,
      ],
      [
        "keys other than the registered ones",
        signNodeDescriptor(a.signer, p.registryDomain, {
          ...fields(a, now),
          x25519: otherKeys.x25519.publicKey.toString("hex"),
          mlkem: Buffer.from(otherKeys.mlkemPublic).toString("base64"),
          keysHash: `0x${otherKeys.keysHash.toString("hex")}`,
        }),
        DropReason.keysMismatch,
      ],
      [
        "another endpoint",
        signNodeDescriptor(a.signer, p.registryDomain, fields(a, now, { endpoint: "127.0.0.1:9999" })),
        DropReason.endpointMismatch,
      ],
      [
        "another region",
        signNodeDescriptor(a.signer, p.registryDomain, fields(a, now, { region: "US" })),
        DropReason.regionMismatch,
      ],
      [
        "expired",
        signNodeDescriptor(
          a.signer,
          p.registryDomain,
          fields(a, now, { notBefore: now - 7_200, notAfter: now - 3_600 }),
        ),
        DropReason.expired,
      ],
    ];
    for (const [name, descriptor, reason] of cases) {
      const r = await verify(await descriptor, anchors, now);
      assert.equal(r.ok, false, `${name} must be refused`);
      if (!r.ok) assert.equal(r.reason, reason, `${name}: ${r.detail}`);
    }
  });

  it("a bootstrap node with the registry as its only anchor (x0t bootstrap --registry) keeps registered relays' descriptors over HTTP", async () => {
    const source = new RegistrySource({ client, registry: p.registry.address });
    await source.syncOnce();
    const chainTime = await chainNow();
    const node = await startBootstrapNode({
      host: "127.0.0.1",
      port: 0,
      domain: p.registryDomain,
      trust: [],
      registry: source,
      peers: [],
      intervalMs: 0,
      logger: silentLogger,
    });
    try {
      // The store judges validity by its own clock: sign for it, not the chain's (which tests move).
      const now = Math.floor(Date.now() / 1000);
      assert.ok(Math.abs(now - chainTime) < 3_600 * 24, "the chain's clock is near the wall clock");
      const [a, b] = relays as [Relay, Relay];
      const good = await signNodeDescriptor(a.signer, p.registryDomain, fields(a, now));
      const forged = await signNodeDescriptor(b.signer, p.registryDomain, fields(a, now));
      assert.deepEqual(await pushDescriptors(node.url, [good, forged]), {
        accepted: 1,
        dropped: { [DropReason.wrongSigner]: 1 },
      });
      assert.deepEqual(
        node.store.entries().map((e) => e.operator),
        [a.operator.toLowerCase()],
      );
    } finally {
      await node.close();
    }
  });

  it("follows events: an unstaked relay is refused, a moved one is accepted at its new endpoint only", async () => {
    const path = join(dir, "follow.json");
    const source = new RegistrySource({ client, registry: p.registry.address, checkpointPath: path });
    await source.syncOnce();
    const [a, b] = relays as [Relay, Relay];
    const now = await chainNow();
    const aDescriptor = await signNodeDescriptor(a.signer, p.registryDomain, fields(a, now));
    assert.ok((await verify(aDescriptor, [source])).ok);

    // a unbonds all its stake: the registry says inactive, so its descriptor is refused.
    await p.registry.write.unbond([MIN_STAKE], { account: a.wallet.account });
    // b moves to another endpoint.
    await p.registry.write.updateNode(
      ["127.0.0.9:9109", region("DE"), `0x${b.keys.keysHash.toString("hex")}`, b.signer.address, "0x"],
      {
        account: b.wallet.account,
      },
    );
    const step = await source.syncOnce();
    assert.ok(step.events >= 2, `events applied: ${step.events}`);
    const later = await chainNow();
    const unstaked = await verify(aDescriptor, [source], later);
    assert.equal(!unstaked.ok && unstaked.reason, DropReason.unstaked);
    const bOld = await signNodeDescriptor(b.signer, p.registryDomain, fields(b, later));
    const bNew = await signNodeDescriptor(b.signer, p.registryDomain, fields(b, later, { endpoint: "127.0.0.9:9109" }));
    const old = await verify(bOld, [source], later);
    assert.equal(!old.ok && old.reason, DropReason.endpointMismatch);
    assert.ok((await verify(bNew, [source], later)).ok);

    // A restart reads the checkpoint: it knows a is unstaked before it reaches the RPC.
    const restarted = new RegistrySource({ client, registry: p.registry.address, checkpointPath: path });
    assert.equal(restarted.status().block, source.status().block);
    const again = await verify(aDescriptor, [restarted], later);
    assert.equal(!again.ok && again.reason, DropReason.unstaked);
    assert.ok((await verify(bNew, [restarted], later)).ok);
  });

  it("survives an RPC outage: serves the last records, backs off, catches up when the RPC returns", async () => {
    let down = false;
    let calls = 0;
    const flaky = createPublicClient({
      transport: custom(
        {
          request: async (args: { method: string; params?: unknown }) => {
            calls++;
            if (down) throw new Error("connection refused (test outage)");
            return connection.provider.request(args as Parameters<typeof connection.provider.request>[0]);
          },
        },
        { retryCount: 0 },
      ),
    }) as unknown as PublicClient;
    const sleeps: number[] = [];
    const source = new RegistrySource({
      client: flaky,
      registry: p.registry.address,
      pollMs: 20,
      backoffMs: { initial: 10, max: 80 },
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise((r) => setTimeout(r, 1));
      },
    });
    await source.syncOnce();
    const [a] = relays as [Relay];
    const now = await chainNow();
    const descriptor = await signNodeDescriptor(a.signer, p.registryDomain, fields(a, now));
    down = true;
    await p.registry.write.unbond([MIN_STAKE], { account: a.wallet.account });
    source.start();
    try {
      for (let i = 0; i < 200 && source.status().failures < 6; i++) await new Promise((r) => setTimeout(r, 5));
      const status = source.status();
      assert.ok(status.failures >= 6 && status.stale, `failures ${status.failures}`);
      assert.deepEqual(sleeps.slice(0, 6), [10, 20, 40, 80, 80, 80], "exponential backoff, bounded");
      assert.ok((await verify(descriptor, [source], now)).ok, "the last records keep answering during the outage");
      down = false;
      for (let i = 0; i < 200 && source.status().failures > 0; i++) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 200 && source.lookup(a.operator).kind === "record"; i++) {
        const found = source.lookup(a.operator);
        if (found.kind === "record" && !found.record.active) break;
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      await source.stop();
    }
    assert.equal(source.status().failures, 0);
    const after = await verify(descriptor, [source], now);
    assert.equal(!after.ok && after.reason, DropReason.unstaked, "the unbond made during the outage is applied");
    assert.ok(calls > 10);
  });
});

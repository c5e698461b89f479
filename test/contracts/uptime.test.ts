/**
 * Uptime attestations end to end on loopback and the in-process chain: three real relays probe each
 * other over their links (PING/PONG), sign what they measured at the epoch's end, push it to the
 * relay it is about (UPTIME cell); each relay's inbox checks and keeps what arrives and its chain
 * duty submits the attestations once k = 2 are held. The relay two others saw up earns 99% of
 * what its payer released; one only one relay attested, and one that went down mid-epoch, earn the
 * plain 90%. Hostile attestations (forged, own, low, early, misaddressed, tampered, malformed on
 * the wire) are refused without harm to the relay.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, getAddress, type LocalAccount, parseEventLogs, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { signReceipt, signUptime } from "@x0tta6bl4/relayer/accounting/receipts";
import { AccountingStore } from "@x0tta6bl4/relayer/accounting/store";
import { epochRewardsAbi } from "@x0tta6bl4/relayer/chain/abi";
import { claimRewards, settleOnce } from "@x0tta6bl4/relayer/chain/settlement";
import { submitUptimeDue } from "../../relayer/src/chain/uptime.ts";
import { Link } from "../../relayer/src/link/link.ts";
import { Knowledge } from "../../relayer/src/mesh/knowledge.ts";
import type { RelayNode } from "../../relayer/src/node/relay.ts";
import { registryNodeOf, UptimeInbox, UptimeProber } from "../../relayer/src/node/uptime.ts";
import { CellCommand } from "../../relayer/src/wire/cell.ts";
import { encodeUptime, type UptimeAttestation } from "../../relayer/src/wire/uptime.ts";
import { startRelays } from "../relayer/helpers.ts";
import {
  buyCredit,
  connect,
  deployProtocol,
  GB,
  lockFor,
  type Protocol,
  registerRelayer,
  type Wallet,
  warpToEpoch,
  X0T,
  settlementClients,
} from "../helpers/protocol.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `done` every 20 ms for at most `ms`; fails with `what` if it never holds. */
async function until(what: string, done: () => boolean, ms = 30_000) {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (done()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

interface TestRelay {
  name: string;
  wallet: Wallet;
  operator: Address;
  signer: LocalAccount;
  node: RelayNode;
  store: AccountingStore;
  knowledge: Knowledge;
  inbox: UptimeInbox;
  prober?: UptimeProber;
}

describe("uptime attestations between relays (probes, signatures, inbox, submitUptime, bonus)", async () => {
  const connection = await connect();
  let p: Protocol;
  let dir: string;
  let relays: TestRelay[];
  let e1: bigint;
  /** The epoch the relays' clocks are in (the test moves it with the chain). */
  let epochNow = 0n;
  let payer: { wallet: Wallet; key: LocalAccount };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "x0t-uptime-"));
    p = await deployProtocol(connection); // k = 2 attestations
    payer = { wallet: p.wallets[8]!, key: await buyCredit(p, p.wallets[8]!, 10n * X0T) };
    relays = [];
    for (const [i, name] of ["A", "B", "C"].entries()) {
      const wallet = p.wallets[3 + i]!;
      const signer = await registerRelayer(p, wallet);
      const operator = getAddress(wallet.account.address);
      const store = new AccountingStore(join(dir, `${name}.sqlite`));
      const inbox = new UptimeInbox({
        store,
        relayer: operator,
        domain: p.receiptDomain,
        currentEpoch: () => epochNow,
        windowEpochs: () => 1,
        operatorOf: (s) => p.registry.read.operatorOf([s]),
      });
      const [node] = await startRelays(1, {
        onUptime: (a) => void inbox.receive(a),
        limits: { pingsPerSecond: 1_000 }, // the test probes every 10 ms
      });
      relays.push({
        name,
        wallet,
        operator,
        signer,
        node: node!,
        store,
        knowledge: new Knowledge(join(dir, `${name}.knowledge.sqlite`)),
        inbox,
      });
    }
    // Every relay registered before e1 began: all may attest in e1.
    e1 = (await p.rewards.read.currentEpoch()) + 1n;
    await warpToEpoch(connection, p, e1);
    epochNow = e1;
  });

  after(async () => {
    for (const r of relays ?? []) {
      r.prober?.stop();
      await r.node.close().catch(() => {});
      r.store.close();
      r.knowledge.close();
    }
    await rm(dir, { recursive: true, force: true });
  });

  const peerOf = (r: TestRelay) => ({ operator: r.operator, host: r.node.host, port: r.node.port, keys: r.node.keys });
  const clientsOf = async (r: TestRelay) => settlementClients(p, r.wallet, await connection.viem.getPublicClient());

  it("reads each uptime peer's registry record once per TTL, not at every refresh; a failed read is not kept", async () => {
    let reads = 0;
    let failNext = false;
    const counting = {
      readContract: (args: Parameters<PublicClient["readContract"]>[0]) => {
        reads++;
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error("RPC down"));
        }
        return p.publicClient.readContract(args as never);
      },
    } as unknown as PublicClient;
    let clock = 1_000_000;
    const nodeOf = registryNodeOf(counting, p.registry.address, { ttlMs: 300_000, now: () => clock });
    const a = relays[0]!.operator;
    for (let refresh = 0; refresh < 30; refresh++) assert.notEqual((await nodeOf(a)).registeredAt, 0);
    assert.equal(reads, 1, "30 refreshes within the TTL: one read");
    const stranger = privateKeyToAccount(generatePrivateKey()).address;
    assert.equal((await nodeOf(stranger)).registeredAt, 0);
    assert.equal(reads, 2);
    clock += 300_001;
    failNext = true;
    await assert.rejects(nodeOf(a), /RPC down/);
    assert.equal((await nodeOf(a)).keysHash, (await p.registry.read.getNode([a])).keysHash, "read again");
    assert.equal(reads, 4, "past the TTL: read again; the failed read was not kept");
  });

  it("probes for an epoch, attests the relays that stayed up, and pays the bonus only with k attestations", async () => {
    const [a, b, c] = relays as [TestRelay, TestRelay, TestRelay];
    // C does not measure B: B can hold one attestation (A's), fewer than k = 2.
    const peers = new Map([
      [a, [b, c]],
      [b, [a, c]],
      [c, [a]],
    ]);
    for (const r of relays) {
      r.prober = new UptimeProber({
        self: r.operator,
        peers: () => peers.get(r)!.map(peerOf),
        knowledge: r.knowledge,
        clock: { epochOf: () => epochNow },
        probeIntervalMs: 10,
        lostAfterMs: 2_000, // generous: a loaded machine must not lose a loopback probe
        sign: (fields) => signUptime(r.signer, p.receiptDomain, fields),
      });
      await r.prober.start();
    }
    const figures = (from: TestRelay, of: TestRelay) => from.knowledge.uptime(of.operator.toLowerCase(), e1);
    // C's relay process goes away part-way: the probes of it that follow go unanswered.
    await until("60 probes of C", () => figures(a, c).answered >= 60 && figures(b, c).answered >= 60);
    await c.node.close();
    await until("130 probes of every peer", () =>
      [...peers].every(([from, tos]) => tos.every((to) => figures(from, to).probes >= 130)),
    );
    assert.ok(figures(a, b).answered * 100 >= figures(a, b).probes * 99, "B answered A's probes");
    assert.ok(figures(a, c).answered < figures(a, c).probes * 0.99, "C stopped answering");

    // Payers' receipts for e1 at A and B (1 GB each, locked).
    for (const r of [a, b]) {
      await lockFor(p, payer.wallet, r.operator, 2n * GB, e1 + 1n);
      const receipt = await signReceipt(payer.key, p.receiptDomain, {
        relayer: r.operator,
        epoch: e1,
        cells: 1_000_000n,
        bytes: GB,
      });
      r.store.saveReceipt(e1, receipt);
    }

    // The epoch ends: the probers push what they signed (after their last probes came back).
    await warpToEpoch(connection, p, e1 + 1n);
    epochNow = e1 + 1n;
    await until("A's two attestations", () => a.store.attestations(e1).length === 2, 10_000);
    await until("B's attestation", () => b.store.attestations(e1).length === 1, 10_000);
    await sleep(300); // anything else in flight has arrived
    assert.equal(c.store.attestations(e1).length, 0, "nobody attests a relay that was down for part of the epoch");
    const held = a.store.attestations(e1);
    assert.deepEqual(
      held.map((x) => x.signer.toLowerCase()).sort(),
      [b.signer.address, c.signer.address].map((s) => s.toLowerCase()).sort(),
    );
    assert.ok(held.every((x) => x.probes >= 100 && x.answered * 100 >= x.probes * 99));

    // Each relay's settlement round: receipts, then the uptime bonus where k attestations are held.
    const outcomes = new Map<TestRelay, Awaited<ReturnType<typeof submitUptimeDue>>>();
    for (const r of [a, b]) {
      const clients = await clientsOf(r);
      const report = await settleOnce(r.store, clients, r.operator);
      assert.equal(report.submitted[0]?.paid, 1);
      outcomes.set(r, await submitUptimeDue(r.store, clients, r.operator, report.currentEpoch));
    }
    const aOut = outcomes.get(a)![0]!;
    assert.equal(aOut.kind, "attested");
    assert.deepEqual(outcomes.get(b), [{ epoch: e1, kind: "waiting", usable: 1, needed: 2 }]);
    const publicClient = await connection.viem.getPublicClient();
    const receipt = await publicClient.getTransactionReceipt({ hash: (aOut as { tx: `0x${string}` }).tx });
    const [event] = parseEventLogs({ abi: epochRewardsAbi, logs: receipt.logs, eventName: "UptimeAttested" });
    assert.equal(event?.args.relayer, a.operator);
    assert.deepEqual(
      event?.args.attesters,
      [...event!.args.attesters].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1)),
    );
    // Running the round again sends nothing (the chain says it is done).
    assert.deepEqual(await submitUptimeDue(a.store, await clientsOf(a), a.operator, e1 + 1n), []);

    // After the window: A earns 99% of the 1 X0T its payer released, B the plain 90%.
    await warpToEpoch(connection, p, e1 + 2n);
    const { minted: aMinted } = await claimRewards(await clientsOf(a), a.operator, [e1]);
    const { minted: bMinted } = await claimRewards(await clientsOf(b), b.operator, [e1]);
    assert.equal(aMinted, (X0T * 9_900n) / 10_000n);
    assert.equal(bMinted, (X0T * 9_000n) / 10_000n);
  });

  it("refuses hostile attestations in the inbox, and a malformed UPTIME cell closes only its link", async () => {
    const [a, b] = relays as [TestRelay, TestRelay, TestRelay];
    epochNow = e1 + 10n; // the inbox judges epochs by its clock alone
    const epoch = epochNow - 1n; // ended, still inside the window
    const fields = {
      relayer: a.operator,
      epoch,
      probes: 120,
      answered: 120,
      measurements: `0x${"ab".repeat(32)}` as const,
    };
    const signed = async (signer: LocalAccount, f = fields): Promise<UptimeAttestation> => ({
      ...(await signUptime(signer, p.receiptDomain, f)),
      relayer: f.relayer,
      epoch: f.epoch,
    });
    const stranger = privateKeyToAccount(generatePrivateKey());
    assert.equal(await a.inbox.receive(await signed(stranger)), "signer not registered");
    assert.equal(await a.inbox.receive(await signed(a.signer)), "own signer");
    assert.equal(
      await a.inbox.receive(await signed(b.signer, { ...fields, answered: 118 })),
      "below the minimum (100 probes, 99%)",
    );
    assert.equal(
      await a.inbox.receive(await signed(b.signer, { ...fields, probes: 99, answered: 99 })),
      "below the minimum (100 probes, 99%)",
    );
    assert.equal(await a.inbox.receive(await signed(b.signer, { ...fields, epoch: epochNow })), "epoch not ended");
    assert.equal(
      await a.inbox.receive(await signed(b.signer, { ...fields, epoch: epochNow - 3n })),
      "submission window closed",
    );
    assert.equal(
      await a.inbox.receive(await signed(b.signer, { ...fields, relayer: b.operator })),
      "names another relayer",
    );
    const tampered = { ...(await signed(b.signer)), probes: 200, answered: 200 };
    assert.equal(await a.inbox.receive(tampered), "bad signature");
    assert.equal(
      await a.inbox.receive({ ...(await signed(b.signer)), r: `0x${"00".repeat(32)}` }),
      "malformed signature",
    );
    assert.equal(await a.inbox.receive(await signed(b.signer)), "kept");
    assert.equal(await a.inbox.receive(await signed(b.signer)), "duplicate");

    // On the wire: a short UPTIME body is a protocol error on that link only.
    const bad = await Link.connect(a.node.host, a.node.port, a.node.keys);
    const closed = new Promise<void>((resolve) => bad.setHandler({ onCell: () => {}, onClose: () => resolve() }));
    bad.send(0, CellCommand.uptime, [encodeUptime(await signed(b.signer)).subarray(0, 100)]);
    await closed;
    const good = await Link.connect(a.node.host, a.node.port, a.node.keys);
    const pong = new Promise<Buffer>((resolve) =>
      good.setHandler({
        onCell: (cell) => cell.command === CellCommand.pong && resolve(Buffer.from(cell.body)),
        onClose: () => {},
      }),
    );
    good.send(0, CellCommand.ping, [Buffer.from("x0t!")]);
    assert.equal((await pong).toString(), "x0t!", "the relay still answers on a new link");
    good.close();

    // A PING flood is answered at the relay's rate (1,000 a second here, 8 by default), no faster.
    const flood = await Link.connect(a.node.host, a.node.port, a.node.keys);
    let pongs = 0;
    flood.setHandler({ onCell: (cell) => void (cell.command === CellCommand.pong && pongs++), onClose: () => {} });
    const started = Date.now();
    for (let i = 0; i < 20_000; i++) flood.send(0, CellCommand.ping, [Buffer.of(i & 0xff)]);
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 100 && pongs === 0; i++) await new Promise((r) => setTimeout(r, 50)); // a loaded machine
    const seconds = (Date.now() - started) / 1000;
    assert.ok(pongs > 0 && pongs <= 1_000 + 1_000 * seconds, `${pongs} PONGs for 20,000 PINGs in ${seconds} s`);
    flood.close();
  });
});

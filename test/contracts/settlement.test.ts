/**
 * The relay's settlement on the in-process chain, with its SQLite store in a real file: receipts
 * in, batches out, outcomes read back, rewards claimed, and the crash points in between.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import {
  type Address,
  createPublicClient,
  createWalletClient,
  custom,
  getAddress,
  type LocalAccount,
  toHex,
} from "viem";
import { generatePrivateKey, nonceManager, privateKeyToAccount } from "viem/accounts";
import { x0tAbi } from "@x0tta6bl4/relayer/chain/abi";
import { sendWithBumps } from "../../relayer/src/chain/send.ts";
import { type SignedReceipt, signReceipt } from "@x0tta6bl4/relayer/accounting/receipts";
import { AccountingStore } from "@x0tta6bl4/relayer/accounting/store";
import { ChannelReader } from "@x0tta6bl4/relayer/chain/reader";
import {
  claimRewards,
  recoverBatches,
  type SettlementClients,
  settleOnce,
  submitEpoch,
} from "@x0tta6bl4/relayer/chain/settlement";
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

describe("relay settlement (SQLite store + EpochRewards)", async () => {
  const connection = await connect();
  const { networkHelpers } = connection;
  let p: Protocol;
  let relay: Wallet;
  let relayer: Address;
  let payers: { wallet: Wallet; key: LocalAccount }[];
  let dir: string;
  let restore: () => Promise<void>;
  let clients: SettlementClients;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "x0t-settlement-"));
    p = await deployProtocol(connection);
    relay = p.wallets[3]!;
    relayer = getAddress(relay.account.address);
    await registerRelayer(p, relay);
    payers = [];
    for (const wallet of p.wallets.slice(4, 7)) payers.push({ wallet, key: await buyCredit(p, wallet, 10n * X0T) });
    clients = settlementClients(p, relay, await connection.viem.getPublicClient());
    const snapshot = await networkHelpers.takeSnapshot();
    restore = () => snapshot.restore();
  });
  beforeEach(async () => restore());
  after(async () => rm(dir, { recursive: true, force: true }));

  let n = 0;
  const openStore = () => new AccountingStore(join(dir, `relay-${++n}.sqlite`));
  const receipt = (key: LocalAccount, epoch: bigint, gb: bigint): Promise<SignedReceipt> =>
    signReceipt(key, p.receiptDomain, { relayer, epoch, cells: gb * 1_000_000n, bytes: gb * GB });

  it("keeps only the newest receipt per key, across a restart", async () => {
    const path = join(dir, "keep.sqlite");
    let store = new AccountingStore(path);
    const [a] = payers;
    assert.equal(store.saveReceipt(0n, await receipt(a!.key, 0n, 2n)), true);
    assert.equal(store.saveReceipt(0n, await receipt(a!.key, 0n, 1n)), false, "an older receipt is ignored");
    store.close(); // as a SIGKILL would leave it: every call committed before it returned
    store = new AccountingStore(path);
    const queued = store.queued(0n);
    assert.equal(queued.length, 1);
    assert.equal(queued[0]!.bytes_, 2n * GB);
    assert.deepEqual(store.queuedEpochs(), [0n]);
    store.close();
  });

  it("submits an epoch: pays the locked, retries the short after a top-up, refuses the forged, then claims", async () => {
    const store = openStore();
    const [a, b, c] = payers;
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, a!.wallet, relayer, 2n * GB, epoch);
    const forger = privateKeyToAccount(generatePrivateKey());
    store.saveReceipt(epoch, await receipt(a!.key, epoch, 2n));
    store.saveReceipt(epoch, await receipt(b!.key, epoch, 1n)); // b has not locked yet
    store.saveReceipt(epoch, { ...(await receipt(forger, epoch, 5n)), key: c!.key.address });
    await warpToEpoch(connection, p, epoch + 1n);
    const first = await submitEpoch(store, clients, relayer, epoch);
    assert.deepEqual(first, { epoch, batches: 1, paid: 1, settled: 0, retry: 1, refused: 1 });
    assert.equal(store.outcome(epoch, c!.key.address), "refused: InvalidReceiptSignature");
    assert.equal(store.outcome(epoch, b!.key.address), "retry: InsufficientCredit");
    await lockFor(p, b!.wallet, relayer, 1n * GB, epoch + 1n);
    const second = await submitEpoch(store, clients, relayer, epoch);
    assert.deepEqual(second, { epoch, batches: 1, paid: 1, settled: 0, retry: 0, refused: 0 });
    assert.equal(store.queued(epoch).length, 0);
    await warpToEpoch(connection, p, epoch + 2n);
    const { minted } = await claimRewards(clients, relayer, [epoch]);
    assert.equal(minted, (3n * X0T * 9_000n) / 10_000n, "90% of the 3 X0T the two payers released");
    store.close();
  });

  it("survives a crash before the send and after it, without paying twice", async () => {
    const path = join(dir, "crash.sqlite");
    let store = new AccountingStore(path);
    const [a, b] = payers;
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, a!.wallet, relayer, 5n * GB, epoch);
    await lockFor(p, b!.wallet, relayer, 5n * GB, epoch);
    store.saveReceipt(epoch, await receipt(a!.key, epoch, 2n));
    await warpToEpoch(connection, p, epoch + 1n);
    // Crash 1: the batch is recorded, the process dies before sending it.
    store.beginBatch(epoch, [a!.key.address]);
    store.close();
    store = new AccountingStore(path);
    assert.equal(await recoverBatches(store, clients), 1);
    assert.equal(store.queued(epoch).length, 1, "the interrupted batch's receipt is queued again");
    // Crash 2: the transaction is sent and recorded, the process dies before the outcome.
    const [queued] = store.queued(epoch);
    const id = store.beginBatch(epoch, [queued!.key]);
    const { key, cells, bytes_, r, vs } = queued!;
    const hash = await p.rewards.write.submitReceipts([relayer, epoch, [{ key, cells, bytes_, r, vs }]], {
      account: relay.account,
    });
    store.markSent(id, hash);
    store.close();
    store = new AccountingStore(path);
    assert.equal(await recoverBatches(store, clients), 1);
    assert.equal(store.outcome(epoch, a!.key.address), "paid");
    // The same receipt again (a replay, or a resend after an ambiguous failure) pays nothing more.
    store.saveReceipt(epoch, await receipt(b!.key, epoch, 1n));
    const replay = await receipt(a!.key, epoch, 2n);
    const hash2 = await p.rewards.write.submitReceipts([relayer, epoch, [replay]], { account: relay.account });
    await p.publicClient.waitForTransactionReceipt({ hash: hash2 });
    const result = await submitEpoch(store, clients, relayer, epoch);
    assert.deepEqual(result, { epoch, batches: 1, paid: 1, settled: 0, retry: 0, refused: 0 });
    assert.equal((await p.credit.read.channelOf([a!.key.address, relayer])).bytesPaid, 2n * GB, "paid once");
    store.close();
  });

  it("sends again a batch a reorg took out of the chain, and pays it once", async () => {
    const store = openStore();
    const [, , c] = payers;
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, c!.wallet, relayer, 5n * GB, epoch);
    store.saveReceipt(epoch, await receipt(c!.key, epoch, 1n));
    await warpToEpoch(connection, p, epoch + 1n);
    // The chain as it was before the batch: a reorg will bring it back.
    const fork = await connection.networkHelpers.takeSnapshot();
    const first = await settleOnce(store, clients, relayer);
    assert.equal(first.submitted[0]?.paid, 1);
    assert.equal((await p.credit.read.channelOf([c!.key.address, relayer])).bytesPaid, GB);
    await fork.restore(); // the reorg: the batch's block is gone, the chain never saw the transaction
    assert.equal((await p.credit.read.channelOf([c!.key.address, relayer])).bytesPaid, 0n);
    const again = await settleOnce(store, clients, relayer);
    assert.equal(again.reorged, 1, "the confirmed batch is found missing");
    assert.equal(again.submitted[0]?.paid, 1, "and its receipt is sent again");
    assert.equal((await p.credit.read.channelOf([c!.key.address, relayer])).bytesPaid, GB, "paid once");
    const quiet = await settleOnce(store, clients, relayer);
    assert.equal(quiet.reorged, 0);
    assert.deepEqual(quiet.submitted, [], "nothing left to send");
    store.close();
  });

  it("refuses to send a batch the chain would revert, and gives up on an epoch whose window closed", async () => {
    const store = openStore();
    const [a] = payers;
    const epoch = await p.rewards.read.currentEpoch();
    store.saveReceipt(epoch, await receipt(a!.key, epoch, 1n));
    await assert.rejects(submitEpoch(store, clients, relayer, epoch), /EpochNotOpen/);
    assert.equal(store.unfinishedBatches().length, 0, "nothing recorded for a batch that was never sent");
    assert.equal(store.abandon(epoch, "submission window closed"), 1);
    assert.equal(store.queued(epoch).length, 0);
    store.close();
  });

  it("replaces a batch stuck under the base fee with higher fees, after a restart too, and it pays once", async () => {
    const store = openStore();
    const [a] = payers;
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, a!.wallet, relayer, 2n * GB, epoch);
    store.saveReceipt(epoch, await receipt(a!.key, epoch, 1n));
    await warpToEpoch(connection, p, epoch + 1n);
    const provider = connection.provider;
    const nonce = await clients.public.getTransactionCount({ address: relayer });
    await provider.request({ method: "evm_setAutomine", params: [false] });
    try {
      // The batch is priced for today's base fee; the blocks that follow demand ten times its cap.
      const impatient = { ...clients, bumps: { afterBlocks: 2, pollMs: 20, timeoutMs: 500 } };
      const pending = submitEpoch(store, impatient, relayer, epoch);
      for (let i = 0; i < 200 && store.unfinishedBatches()[0]?.txHashes.length !== 1; i++) await sleep(10);
      const [first] = store.unfinishedBatches()[0]!.txHashes;
      const tx = await clients.public.getTransaction({ hash: first! });
      await provider.request({ method: "hardhat_setNextBlockBaseFeePerGas", params: [toHex(tx.maxFeePerGas! * 10n)] });
      await networkHelpers.mine(1);
      await assert.rejects(pending, /could not land the batch/);
      // As a crash would leave it: the batch "sent", its one transaction waiting in the mempool.
      const [batch] = store.unfinishedBatches();
      assert.equal(batch?.status, "sent");
      assert.deepEqual(batch?.txHashes, [first]);
      // The restart's recovery replaces it (same nonce, higher fees) until a block takes it.
      let done = false;
      const recovering = recoverBatches(store, {
        ...clients,
        bumps: { afterBlocks: 2, pollMs: 20, timeoutMs: 60_000 },
      });
      void recovering.finally(() => (done = true));
      for (let i = 0; i < 500 && !done; i++) {
        await networkHelpers.mine(1);
        await sleep(20);
      }
      assert.equal(await recovering, 1);
      const landed = store.batch(batch!.id);
      assert.equal(landed.status, "confirmed");
      assert.ok(landed.txHashes.length >= 2, `replaced at least once (${landed.txHashes.length} transactions)`);
      assert.equal(landed.txHashes[0], first);
      const mined = await clients.public.getTransactionReceipt({ hash: landed.txHash! });
      assert.ok(mined.effectiveGasPrice > tx.maxFeePerGas!, "it paid more than the first could offer");
      assert.equal(await clients.public.getTransactionCount({ address: relayer }), nonce + 1, "one transaction mined");
      assert.equal(store.outcome(epoch, a!.key.address), "paid");
    } finally {
      await provider.request({ method: "evm_setAutomine", params: [true] });
      store.close();
    }
  });

  it("gives one signer's concurrent transactions their own nonces, and frees the nonce of a send that failed", async () => {
    // As node/evmkey.ts loads a relay's signer: with viem's nonce manager, shared by every duty.
    const signer = privateKeyToAccount(generatePrivateKey(), { nonceManager });
    const wallet = createWalletClient({ account: signer, transport: custom(connection.provider) });
    const both = { public: clients.public, wallet: wallet as unknown as SettlementClients["wallet"] };
    const approve = (amount: bigint) => ({
      address: p.token.address,
      abi: x0tAbi,
      functionName: "approve",
      args: [relayer, amount],
    });
    await networkHelpers.setBalance(signer.address, 10n ** 18n);
    const start = await clients.public.getTransactionCount({ address: signer.address });
    // Lock landing and settlement sending at once: neither takes the other's nonce.
    const [a, b] = await Promise.all([
      sendWithBumps(both, approve(1n), () => {}),
      sendWithBumps(both, approve(2n), () => {}),
    ]);
    assert.equal(a.status, "success");
    assert.equal(b.status, "success");
    const nonces = await Promise.all([a, b].map((r) => clients.public.getTransaction({ hash: r.transactionHash })));
    assert.deepEqual(nonces.map((t) => t.nonce).sort(), [start, start + 1]);
    // A send the node refuses (no ETH for gas) must not leave a gap that every later one waits behind.
    await networkHelpers.setBalance(signer.address, 0n);
    await assert.rejects(sendWithBumps(both, approve(3n), () => {}));
    await networkHelpers.setBalance(signer.address, 10n ** 18n);
    const c = await sendWithBumps(both, approve(4n), () => {}, { timeoutMs: 20_000 });
    assert.equal(c.status, "success");
    assert.equal((await clients.public.getTransaction({ hash: c.transactionHash })).nonce, start + 2);
  });
});

describe("relay settlement through an RPC outage", async () => {
  const connection = await connect();
  let p: Protocol;
  let relay: Wallet;
  let relayer: Address;
  let payer: { wallet: Wallet; key: LocalAccount };
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "x0t-outage-"));
    p = await deployProtocol(connection, { submissionWindow: 3 });
    relay = p.wallets[3]!;
    relayer = getAddress(relay.account.address);
    await registerRelayer(p, relay);
    payer = { wallet: p.wallets[4]!, key: await buyCredit(p, p.wallets[4]!, 10n * X0T) };
  });

  after(async () => rm(dir, { recursive: true, force: true }));

  it("keeps receipts through two epochs without RPC, settles them once it is back, reads stale locks meanwhile", async () => {
    // The chain is real; only the relay's RPC transport fails while `down` is set.
    let down = false;
    const provider = connection.provider;
    const transport = custom({
      request: async (args: { method: string; params?: unknown }) => {
        if (down) throw new Error("connect ECONNREFUSED 127.0.0.1:8545");
        return provider.request(args as Parameters<typeof provider.request>[0]);
      },
    });
    const publicClient = createPublicClient({ transport, pollingInterval: 50 });
    const walletClient = createWalletClient({ account: relay.account, transport });
    const clients = settlementClients(p, walletClient, publicClient);
    let clock = 0;
    const reader = new ChannelReader(
      publicClient as unknown as SettlementClients["public"],
      { credit: p.credit.address, rewards: p.rewards.address, relayer },
      { ttlMs: 1_000, now: () => clock },
    );
    const store = new AccountingStore(join(dir, "outage.sqlite"));
    const epoch = await p.rewards.read.currentEpoch();
    await lockFor(p, payer.wallet, relayer, 4n * GB, epoch + 1n);
    const fresh = await reader.channel(payer.key.address);
    assert.equal(fresh.bytesLeft, 4n * GB);
    assert.equal(fresh.stale, false);
    const signed = await signReceipt(payer.key, p.receiptDomain, { relayer, epoch, cells: 3_000n, bytes: 3n * GB });
    store.saveReceipt(epoch, signed);
    down = true;
    clock += 5_000; // past the cache's TTL: the last value is served, marked stale
    const cached = await reader.channel(payer.key.address);
    assert.equal(cached.stale, true);
    assert.equal(cached.bytesLeft, 4n * GB);
    await warpToEpoch(connection, p, epoch + 1n);
    await assert.rejects(settleOnce(store, clients, relayer), /ECONNREFUSED/);
    const stale = await new ChannelReader(publicClient as never, {
      credit: p.credit.address,
      rewards: p.rewards.address,
      relayer,
    })
      .channel(payer.key.address)
      .then(
        () => "read",
        (e: Error) => e.name,
      );
    assert.equal(stale, "ChainReadError", "a key never read cannot be judged while the RPC is down");
    await warpToEpoch(connection, p, epoch + 3n);
    await assert.rejects(settleOnce(store, clients, relayer), /ECONNREFUSED/);
    assert.equal(store.queued(epoch).length, 1, "the receipt waits in the store");
    down = false;
    const report = await settleOnce(store, clients, relayer);
    assert.equal(report.submitted.length, 1);
    assert.equal(report.submitted[0]!.paid, 1);
    assert.equal((await p.credit.read.channelOf([payer.key.address, relayer])).bytesPaid, 3n * GB);
    // A second round finds nothing to do.
    const again = await settleOnce(store, clients, relayer);
    assert.deepEqual(again.submitted, []);
    store.close();
  });

  it("gives up on an epoch whose window closed during the outage, with the reason kept", async () => {
    const store = new AccountingStore(join(dir, "late.sqlite"));
    const epoch = await p.rewards.read.currentEpoch();
    const late = await signReceipt(payer.key, p.receiptDomain, { relayer, epoch, cells: 1n, bytes: 1n });
    store.saveReceipt(epoch, late);
    await warpToEpoch(connection, p, epoch + 4n);
    const clients = settlementClients(p, relay);
    const report = await settleOnce(store, clients, relayer);
    assert.deepEqual(report.abandoned, [{ epoch, receipts: 1 }]);
    assert.equal(store.outcome(epoch, payer.key.address), "refused: submission window closed");
    store.close();
  });
});

/**
 * A relay landing its payers' lock requests (chain-duties → lock-landing) on the in-process chain,
 * with hostile payers beside an honest one: requests the contract would refuse (over the payer's
 * credit, a used nonce, above the key's cap, a bad expiry, two keys of one account that together
 * exceed its credit) and requests below the relay's minimum are dropped before any gas is spent,
 * the honest lock in the same batch lands, and a key's requests land at a bounded rate.
 */
import assert from "node:assert/strict";
import { before, beforeEach, describe, it } from "node:test";
import { type Address, getAddress, type LocalAccount, parseEventLogs } from "viem";
import { CELL_PRICE_BYTES } from "@x0tta6bl4/relayer/accounting/gate";
import { signLockRequest } from "@x0tta6bl4/relayer/accounting/receipts";
import { bandwidthCreditAbi } from "@x0tta6bl4/relayer/chain/abi";
import { createMetrics } from "@x0tta6bl4/relayer/metrics";
import { startChainDuties } from "../../relayer/src/node/chain-duties.ts";
import { createLogger } from "../../relayer/src/log.ts";
import type { PayLock } from "../../relayer/src/wire/payment.ts";
import { PayStopReason } from "../../relayer/src/wire/payment.ts";
import {
  authorizeKey,
  buyCredit,
  connect,
  deployProtocol,
  paymentGateFor,
  type Protocol,
  registerRelayer,
  type Wallet,
  X0T,
} from "../helpers/protocol.js";

const MiB = 1n << 20n;
const creditFor = (bytes: bigint) => (bytes * X0T) / 1_000_000_000n;

describe("landing lock requests: nothing the contract would refuse costs the relay gas", async () => {
  const connection = await connect();
  const { networkHelpers } = connection;
  let p: Protocol;
  let relay: Wallet;
  let relayer: Address;
  let honest: LocalAccount;
  let restore: () => Promise<void>;

  before(async () => {
    p = await deployProtocol(connection);
    relay = p.wallets[3]!;
    relayer = getAddress(relay.account.address);
    await registerRelayer(p, relay);
    honest = await buyCredit(p, p.wallets[4]!, 10n * X0T);
    const snapshot = await networkHelpers.takeSnapshot();
    restore = () => snapshot.restore();
  });
  beforeEach(async () => restore());

  function duties(options: { now?: () => number; lockBurst?: number } = {}) {
    const lines: Record<string, unknown>[] = [];
    const metrics = createMetrics({ defaultMetrics: false });
    const { store, reader } = paymentGateFor(p, relayer, { allowanceBytes: 0n, slackCells: 0n });
    const d = startChainDuties({
      store,
      clients: {
        public: p.publicClient as never,
        wallet: relay as never,
        rewards: p.rewards.address,
        credit: p.credit.address,
      },
      relayer,
      reader,
      creditDomain: p.creditDomain,
      claimAboveWei: null,
      settleEveryMs: 3_600_000,
      lockEveryMs: 3_600_000, // the test flushes
      lockRefillMs: 5_000,
      ...options,
      logger: createLogger({ write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) }),
      metrics,
    });
    const outcomes = async () =>
      Object.fromEntries(
        (await metrics.lockRequests.get()).values
          .filter((v) => v.value > 0)
          .map((v) => [String(v.labels.outcome), v.value]),
      );
    return { d, lines, outcomes };
  }

  let nonce = 1n;
  const request = async (key: LocalAccount, bytes: bigint, expiresEpoch?: bigint, n = nonce++): Promise<PayLock> => {
    const expires = expiresEpoch ?? (await p.rewards.read.currentEpoch()) + 2n;
    const s = await signLockRequest(key, p.creditDomain, { relayer, bytes, expiresEpoch: expires, nonce: n });
    return { key: s.key, bytes, expiresEpoch: expires, nonce: n, r: s.r, vs: s.vs };
  };
  const spent = async () => ({
    balance: await p.publicClient.getBalance({ address: relayer }),
    txs: await p.publicClient.getTransactionCount({ address: relayer }),
  });
  const locked = async (account: Wallet) => (await p.credit.read.lockOf([account.account.address, relayer])).bytesLeft;

  it("drops what the contract would refuse and what is too small; the honest lock in the same batch lands, alone paid for", async () => {
    const epoch = await p.rewards.read.currentEpoch();
    // Hostile payers, each with a real, authorised key and a correctly signed request.
    const dryPayer = p.wallets[5]!;
    const dry = await buyCredit(p, dryPayer, creditFor(1n * MiB)); // asks for 2 MiB
    const replayer = await buyCredit(p, p.wallets[6]!, 1n * X0T);
    const used = await request(replayer, 1n * MiB, undefined, 7n);
    await p.credit.write.openLocks([[{ ...used, relayer, bytes_: used.bytes }]]); // nonce 7 spent elsewhere
    const capped = await authorizeKey(p, p.wallets[6]!, 1n * MiB); // may lock 1 MiB an epoch, asks 2
    const farSighted = await authorizeKey(p, p.wallets[6]!);
    const twin = p.wallets[7]!;
    const [twinA, twinB] = [await buyCredit(p, twin, creditFor(3n * MiB)), await authorizeKey(p, twin)];

    const { d, lines, outcomes } = duties();
    const overCap = await request(capped, 2n * MiB);
    const requests = [
      await request(dry, 2n * MiB),
      await request(honest, 256n * MiB),
      await request(replayer, 2n * MiB, undefined, 7n),
      overCap,
      await request(farSighted, 1n * MiB, epoch + 25n), // past the 24 epochs a key may lock
      await request(twinA, 2n * MiB), // lands: 2 of the account's 3 MiB
      await request(twinB, 2n * MiB), // alone it would; after twinA's, 1 MiB is left
    ];
    for (const r of requests) await d.requestLock(r);
    await d.requestLock(await request(honest, 4_096n, undefined, 99n)); // not worth its gas: dropped, not queued
    // What the relay used to send: every request with a good signature and a known key.
    const unchecked = await p.publicClient.estimateContractGas({
      address: p.credit.address,
      abi: bandwidthCreditAbi,
      functionName: "openLocks",
      args: [requests.map((r) => ({ ...r, relayer, bytes_: r.bytes }))],
      account: relay.account,
    });

    const before = await spent();
    await d.flushLocks();
    const after = await spent();

    assert.equal(after.txs, before.txs + 1, "one transaction");
    const block = await p.publicClient.getBlock({ includeTransactions: true });
    const tx = block.transactions.find((t) => getAddress(t.from) === relayer)!;
    const receipt = await p.publicClient.getTransactionReceipt({ hash: tx.hash });
    const fee = receipt.gasUsed * receipt.effectiveGasPrice;
    assert.equal(before.balance - after.balance, fee, "the relay paid for that transaction only");
    const logs = parseEventLogs({ abi: bandwidthCreditAbi, logs: receipt.logs });
    assert.deepEqual(
      logs.map((l) => l.eventName),
      ["CreditLocked", "CreditLocked"],
      "every request sent locked: no LockRejected",
    );
    console.log(
      `    one openLocks for the 2 locks: ${receipt.gasUsed} gas (all 7 unchecked: ${unchecked}); 6 dropped before any gas`,
    );

    assert.equal(await locked(p.wallets[4]!), 256n * MiB, "the honest lock landed");
    assert.equal(await locked(twin), 2n * MiB, "the twin account's first request landed, the second did not");
    assert.equal(await locked(dryPayer), 0n);
    assert.equal(await p.credit.read.nonceUsed([capped.address, overCap.nonce]), false, "never landed");

    const dropped = lines.filter((l) => l.msg === "lock request dropped: the contract would refuse it");
    assert.deepEqual(dropped.map((l) => l.reason).sort(), [
      "cap-exceeded",
      "credit-short",
      "expiry",
      "nonce-used",
      "refused", // twinB: refused only after twinA's lock in the same batch
    ]);
    assert.ok(lines.some((l) => l.msg === "lock request dropped: below the relay's minimum" && l.bytes === "4096"));
    assert.deepEqual(await outcomes(), { landed: 2, refused: 5, too_small: 1 });

    // The payer whose request was dropped is not paying: the gate counts only what the chain
    // holds, and carries it on the allowance alone.
    const { gate } = paymentGateFor(p, relayer, { allowanceBytes: 10n * CELL_PRICE_BYTES, slackCells: 64n });
    gate.open(1);
    assert.deepEqual(await gate.hello(1, dry.address), { serve: true });
    for (let i = 0; i < 10; i++) assert.deepEqual(gate.cell(1), { serve: true });
    assert.deepEqual(gate.cell(1), { serve: false, reason: PayStopReason.lockShort });
    await d.close();
  });

  it("sends nothing when every request of a batch would be refused", async () => {
    const dry = await buyCredit(p, p.wallets[5]!, creditFor(1n * MiB));
    const { d, outcomes } = duties();
    await d.requestLock(await request(dry, 2n * MiB));
    await d.requestLock(await request(dry, 3n * MiB)); // the newest of a key replaces the one waiting
    const before = await spent();
    await d.flushLocks();
    assert.deepEqual(await spent(), before, "no transaction, no gas");
    assert.deepEqual(await outcomes(), { refused: 1 });
    await d.close();
  });

  it("lands a key's requests at a bounded rate; a request over it waits and lands later, other keys are not held up", async () => {
    let clock = 1_000_000;
    const other = await buyCredit(p, p.wallets[6]!, 1n * X0T);
    const { d, outcomes } = duties({ now: () => clock, lockBurst: 2 });
    for (let i = 0; i < 2; i++) {
      await d.requestLock(await request(honest, 1n * MiB));
      await d.flushLocks();
    }
    assert.equal(await locked(p.wallets[4]!), 2n * MiB, "two at once: the burst");
    await d.requestLock(await request(honest, 1n * MiB));
    await d.requestLock(await request(other, 1n * MiB));
    const before = await spent();
    await d.flushLocks();
    assert.equal((await spent()).txs, before.txs + 1);
    assert.equal(await locked(p.wallets[4]!), 2n * MiB, "the third waits");
    assert.equal(await locked(p.wallets[6]!), 1n * MiB, "another key lands meanwhile");
    await d.flushLocks();
    assert.equal(await locked(p.wallets[4]!), 2n * MiB, "still waiting");
    clock += 5_000;
    await d.flushLocks();
    assert.equal(await locked(p.wallets[4]!), 3n * MiB, "one more after the refill");
    assert.deepEqual(await outcomes(), { landed: 4, rate_limited: 1 });
    await d.close();
  });
});

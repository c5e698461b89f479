/**
 * A payer whose credit runs out in the middle of a download, through the real SOCKS5 entry and
 * three paid relays (their gates, lock landing and the in-process chain): the download stops, the
 * next SOCKS request is refused with REP 0x02 ("connection not allowed") naming the payment, and
 * no relay carried more for the payer than the payment guarantee's bound (what the payer paid or
 * locked for it, plus the relay's allowance and one receipt interval).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { getAddress, type LocalAccount } from "viem";
import { CELL_PRICE_BYTES, PaymentGate } from "@x0tta6bl4/relayer/accounting/gate";
import { startChainDuties, type ChainDuties } from "../../relayer/src/node/chain-duties.ts";
import { type EntryNode, startEntry } from "../../relayer/src/node/entry.ts";
import type { RelayNode } from "../../relayer/src/node/relay.ts";
import { silentLogger } from "../../relayer/src/log.ts";
import { curl, rawExchange } from "../helpers/net.ts";
import { startBlobServer, startRelays } from "../relayer/helpers.ts";
import {
  buyCredit,
  connect,
  deployProtocol,
  directoryOf,
  payerChannels,
  paymentGateFor,
  registerRelayer,
  X0T,
} from "../helpers/protocol.js";

const MiB = 1n << 20n;
const ALLOWANCE = 2n * MiB;
// Receipts may lag the relay's count by this much: wide enough that an honest payer's receipts,
// behind a full socket buffer on a loaded machine, keep up, so that the stop is the credit's.
const SLACK_CELLS = 1024n;

describe("a payer whose credit runs out mid-download", async () => {
  const connection = await connect();
  const p = await deployProtocol(connection);
  const operators = p.wallets.slice(3, 6);
  const relays: RelayNode[] = [];
  const gates: PaymentGate[] = [];
  const duties: ChainDuties[] = [];
  let entry: EntryNode;
  let key: LocalAccount;
  let blob: Awaited<ReturnType<typeof startBlobServer>>;

  before(async () => {
    for (const o of operators) await registerRelayer(p, o);
    // 6 MiB of credit: each relay's first 2 MiB lock lands, and every top-up finds too little.
    key = await buyCredit(p, p.wallets[6]!, (6n * MiB * X0T) / 1_000_000_000n);
    for (const o of operators) {
      const relayer = getAddress(o.account.address);
      const { store, reader, gate, checkPayHello } = paymentGateFor(p, relayer, {
        allowanceBytes: ALLOWANCE,
        slackCells: SLACK_CELLS,
      });
      const d = startChainDuties({
        store,
        clients: {
          public: p.publicClient as never,
          wallet: o as never,
          rewards: p.rewards.address,
          credit: p.credit.address,
        },
        relayer,
        reader,
        creditDomain: p.creditDomain,
        claimAboveWei: null,
        logger: silentLogger,
      });
      gates.push(gate);
      duties.push(d);
      relays.push(
        ...(await startRelays(1, { payments: gate, checkPayHello, onLockRequest: (lock) => d.requestLock(lock) })),
      );
    }
    const directory = directoryOf(relays, operators);
    const payer = payerChannels(p, key, await p.rewards.read.currentEpoch(), {
      everyCells: 64n,
      everyMs: 1_000,
      locks: { bytes: 2n * MiB, epochs: 2n },
    });
    // Fixed path order: the exit last, the others in directory order.
    entry = await startEntry({ socksPort: 0, hops: 3, directory: () => directory, payer, paymentBackoffMs: 60_000 });
    blob = await startBlobServer();
  });
  after(async () => {
    await blob.close();
    await entry.close();
    for (const d of duties) await d.close();
    for (const r of relays) await r.close();
  });

  it("stops the download, refuses the next request with REP 0x02, and no relay is owed beyond the bound", async () => {
    const size = 64 * 1024 * 1024;
    const proxy = `socks5h://127.0.0.1:${entry.socks.address.port}`;
    // A first small request builds the circuit, whose hops are sent the payer's lock requests;
    // the relays land them (in the background, on a timer; here at once) before the download.
    const small = await curl(["-x", proxy, "-o", "/dev/null", `http://127.0.0.1:${blob.port}/blob/65536`]);
    assert.equal(small.code, 0, "a small request is served on the allowance");
    const lockOf = (o: (typeof operators)[number]) =>
      p.credit.read.lockOf([p.wallets[6]!.account.address, getAddress(o.account.address)]);
    for (let tries = 0; tries < 100; tries++) {
      for (const d of duties) await d.flushLocks();
      if ((await Promise.all(operators.map(lockOf))).every((l) => l.bytesLeft === 2n * MiB)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const o of operators) assert.equal((await lockOf(o)).bytesLeft, 2n * MiB, "each relay landed its lock");

    const run = await curl([
      "-x",
      proxy,
      "-o",
      "/dev/null",
      "-w",
      "%{size_download}",
      `http://127.0.0.1:${blob.port}/blob/${size}`,
    ]);
    assert.notEqual(run.code, 0, "the download did not complete");
    const got = Number(run.stdout.toString());
    assert.ok(got > 0 && got < size, `the stream stopped part way (${got} of ${size} bytes)`);

    // The hop that stopped it is avoided; with the credit used up, each new request is refused
    // with the documented reply code (at once when two relays have stopped the payer, else after
    // the entry's attempts), every time.
    const request = async () =>
      (
        await rawExchange(
          entry.socks.address.port,
          [Buffer.from([5, 1, 0]), Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, blob.port >> 8, blob.port & 0xff])],
          10_000,
        )
      ).data[3];
    const replies: (number | undefined)[] = [];
    let refusedInARow = 0;
    for (let attempt = 0; attempt < 8 && refusedInARow < 2; attempt++) {
      const reply = await request();
      replies.push(reply);
      refusedInARow = reply === 0x02 ? refusedInARow + 1 : 0;
      // A request that gets through runs on what is left of a lock or the allowance: use it up.
      if (reply !== 0x02) await curl(["-x", proxy, "-o", "/dev/null", `http://127.0.0.1:${blob.port}/blob/${size}`]);
    }
    assert.equal(refusedInARow, 2, `REP 0x02 (not allowed: payment) twice in a row; replies ${replies.join(", ")}`);

    // The payment guarantee's bound: each relay carried at most what the payer paid or locked for
    // it, plus its allowance and one receipt interval.
    for (const d of duties) await d.flushLocks();
    for (const [i, o] of operators.entries()) {
      const relayer = getAddress(o.account.address);
      const counted = gates[i]!.counted(key.address);
      const lock = await p.credit.read.lockOf([p.wallets[6]!.account.address, relayer]);
      const channel = await p.credit.read.channelOf([key.address, relayer]);
      const covered = lock.bytesLeft + channel.bytesPaid;
      const exposure = counted.bytes > covered ? counted.bytes - covered : 0n;
      console.log(`    r${i + 1}: carried ${counted.bytes} bytes owed, covered ${covered}, exposure ${exposure}`);
      assert.ok(
        exposure <= ALLOWANCE + SLACK_CELLS * CELL_PRICE_BYTES,
        `r${i + 1} exposure ${exposure} within the bound`,
      );
    }
  });

  it("refuses malformed lock requests (r = 0, a point off the curve) without harm to the relay", async () => {
    const zero = `0x${"00".repeat(32)}` as const;
    const offCurve = `0x${"ff".repeat(32)}` as const;
    const epoch = await p.rewards.read.currentEpoch();
    for (const r of [zero, offCurve])
      duties[0]!.requestLock({ key: key.address, bytes: MiB, expiresEpoch: epoch + 1n, nonce: 7n, r, vs: zero });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await duties[0]!.flushLocks(); // nothing was queued: the signatures never verified
    const lock = await p.credit.read.lockOf([p.wallets[6]!.account.address, getAddress(operators[0]!.account.address)]);
    const before = lock.bytesLeft;
    await duties[0]!.flushLocks();
    const after = await p.credit.read.lockOf([
      p.wallets[6]!.account.address,
      getAddress(operators[0]!.account.address),
    ]);
    assert.equal(after.bytesLeft, before, "no lock landed from a forged request");
  });
});

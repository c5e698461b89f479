/**
 * In-band payment end to end, on loopback with three real relays and the in-process chain: the
 * payer's node locks credit for each hop, sends each hop PAY_HELLO and cumulative receipts while a
 * download runs, every hop's gate counts the same cells and keeps the receipts; after the epoch the
 * relays settle and claim 90% of what the payer paid each of them, to the wei. A payer without a
 * lock is stopped once the allowance is used, with a reason that reaches the client.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { type Address, getAddress, type LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { PayHello } from "../../relayer/src/wire/payment.ts";
import { CELL_PRICE_BYTES, PaymentGate } from "@x0tta6bl4/relayer/accounting/gate";
import type { PayerChannels } from "@x0tta6bl4/relayer/accounting/payer";
import { AccountingStore } from "@x0tta6bl4/relayer/accounting/store";
import { claimRewards, settleOnce } from "@x0tta6bl4/relayer/chain/settlement";
import { ClientCircuit, CircuitError } from "../../relayer/src/circuit/client.ts";
import { CircuitMux } from "../../relayer/src/circuit/mux.ts";
import { Link } from "../../relayer/src/link/link.ts";
import type { RelayNode } from "../../relayer/src/node/relay.ts";
import { DestroyReason } from "../../relayer/src/wire/cell.ts";
import { StreamOpenError, StreamReason } from "../../relayer/src/wire/reasons.ts";
import { expectedSha256, hopsOf, startBlobServer, startRelays } from "../relayer/helpers.ts";
import { closedPort, closeServer, echoServer, listen, waitFor } from "../helpers/net.ts";
import {
  buyCredit,
  connect,
  deployProtocol,
  GB,
  lockFor,
  paymentGateFor,
  type Protocol,
  registerRelayer,
  type Wallet,
  warpToEpoch,
  X0T,
  settlementClients,
  payerChannels,
} from "../helpers/protocol.js";

async function fetchThrough(circuit: ClientCircuit, port: number, path: string) {
  const stream = await circuit.openStream({ type: "ipv4", host: "127.0.0.1", port });
  stream.write(`GET ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`);
  const h = createHash("sha256");
  let head = Buffer.alloc(0);
  let inBody = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (inBody) {
      h.update(chunk);
      continue;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    if (end >= 0) {
      inBody = true;
      h.update(head.subarray(end + 4));
    }
  }
  return h.digest("hex");
}

describe("in-band payment through a 3-hop circuit", async () => {
  const connection = await connect();
  let p: Protocol;
  let operators: Wallet[];
  let relays: RelayNode[];
  let gates: PaymentGate[];
  let stores: AccountingStore[];
  let blob: Awaited<ReturnType<typeof startBlobServer>>;
  let payer: Wallet;
  let key: LocalAccount;

  before(async () => {
    p = await deployProtocol(connection);
    operators = p.wallets.slice(3, 6);
    for (const o of operators) await registerRelayer(p, o);
    payer = p.wallets[6]!;
    key = await buyCredit(p, payer, 10n * X0T);
    gates = [];
    stores = [];
    relays = [];
    for (const o of operators) {
      const relayer = getAddress(o.account.address);
      const { store, gate, checkPayHello } = paymentGateFor(p, relayer, {
        allowanceBytes: 256n * CELL_PRICE_BYTES,
        slackCells: 1_024n,
      });
      gates.push(gate);
      stores.push(store);
      relays.push(...(await startRelays(1, { payments: gate, checkPayHello })));
    }
    blob = await startBlobServer();
  });
  after(async () => {
    await blob.close();
    for (const r of relays) await r.close();
  });

  async function circuitFor(channels: PayerChannels, hops = hopsOf(relays)) {
    const link = await Link.connect(hops[0]!.host, hops[0]!.port, hops[0]!.keys);
    const circuit = await ClientCircuit.build(new CircuitMux(link), hops, {
      payer: { channels, operators: operators.map((o) => getAddress(o.account.address) as Address) },
    });
    return { circuit, link };
  }

  /** The payer's node's channels for `key` (epoch fixed), a receipt every `everyCells` cells or `everyMs`. */
  const channelsFor = (key: LocalAccount, epoch: bigint, everyCells: bigint, everyMs: number) =>
    payerChannels(p, key, epoch, { everyCells, everyMs });

  /** A new payer (1 X0T of credit, 10 MB locked at each relay this epoch), receipts every 64 cells or `everyMs`. */
  async function lockedPayer(wallet: Wallet, everyMs: number) {
    const key = await buyCredit(p, wallet, 1n * X0T);
    const epoch = await p.rewards.read.currentEpoch();
    for (const o of operators) await lockFor(p, wallet, getAddress(o.account.address), GB / 100n, epoch + 1n);
    const channels = channelsFor(key, epoch, 64n, everyMs);
    return { key, channels, epoch };
  }

  it("pays each hop for what it carried: same counts on both sides, receipts settled, 90% claimed to the wei", async () => {
    const epoch = await p.rewards.read.currentEpoch();
    for (const o of operators) await lockFor(p, payer, getAddress(o.account.address), GB / 4n, epoch + 1n);
    const channels = channelsFor(key, epoch, 256n, 60_000);
    const { circuit, link } = await circuitFor(channels);
    const size = 8 * 1024 * 1024;
    assert.equal(await fetchThrough(circuit, blob.port, `/blob/${size}`), expectedSha256(size));
    // A last receipt for everything, as the node sends when a circuit closes.
    await new Promise((r) => setTimeout(r, 200));
    circuit.close();
    link.close();
    for (const [i, o] of operators.entries()) {
      const relayer = getAddress(o.account.address);
      const payerCount = channels.counted(relayer);
      const relayCount = gates[i]!.counted(key.address);
      assert.ok(payerCount.cells > 500n, `hop ${i + 1} carried ${payerCount.cells} cells`);
      // The relay may have counted a few cells the client never saw (in flight at close).
      assert.ok(relayCount.cells >= payerCount.cells && relayCount.cells - payerCount.cells < 16n);
      // The last receipt (for the cells since the previous one) reaches the relay on the payer's
      // next circuit; here it goes straight to the relay's store.
      const last = await channels.receipt(relayer);
      stores[i]!.saveReceipt(epoch, { key: last.key, cells: last.cells, bytes_: last.bytes, r: last.r, vs: last.vs });
    }
    await warpToEpoch(connection, p, epoch + 1n);
    for (const [i, o] of operators.entries()) {
      const clients = settlementClients(p, o);
      const report = await settleOnce(stores[i]!, clients, getAddress(o.account.address));
      assert.equal(report.submitted[0]?.paid, 1, `hop ${i + 1}'s receipt paid`);
    }
    await warpToEpoch(connection, p, epoch + 2n);
    for (const o of operators) {
      const relayer = getAddress(o.account.address);
      const owed = channels.counted(relayer).bytes;
      const clients = settlementClients(p, o);
      const { minted } = await claimRewards(clients, relayer, [epoch]);
      const value = (X0T * owed) / GB; // 1 X0T per GB, the lock's own price
      assert.equal(minted, (value * 9_000n) / 10_000n, "90% of what the payer released for this hop, to the wei");
      console.log(
        `    hop ${relayer.slice(0, 8)}: ${channels.counted(relayer).cells} cells, owed ${owed} bytes, minted ${minted} wei`,
      );
    }
  });

  it("stops a payer with no lock once the allowance is used: the client sees why", async () => {
    const stranger = await buyCredit(p, p.wallets[7]!, 1n * X0T);
    const epoch = await p.rewards.read.currentEpoch();
    const channels = channelsFor(stranger, epoch, 64n, 60_000);
    const { circuit, link } = await circuitFor(channels);
    await assert.rejects(fetchThrough(circuit, blob.port, `/blob/${8 * 1024 * 1024}`));
    const closed = await new Promise<CircuitError>((resolve) => circuit.onClose(resolve));
    assert.equal(closed.reason, DestroyReason.payment);
    assert.match(closed.message, /stopped serving this payer: lock-short \(PAY_STOP reason 4\)/);
    link.close();

    // The hop holds the stop for this key: a stream opened on a new circuit is refused "not
    // allowed" (what the entry answers as SOCKS5 REP 0x02), not as a general failure.
    const again = await circuitFor(channels);
    const stopped = await new Promise<CircuitError>((resolve) => again.circuit.onClose(resolve));
    assert.equal(stopped.reason, DestroyReason.payment, stopped.message);
    const refused = await again.circuit.openStream({ host: "127.0.0.1", port: blob.port, type: "ipv4" }).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refused instanceof StreamOpenError, `refused: ${String(refused)}`);
    assert.equal(refused.reason, StreamReason.notAllowed, refused.message);
    assert.match(refused.message, /stopped serving this payer/);
    again.link.close();
  });

  it("refuses a PAY_HELLO replayed from another payer's circuit: the circuit is stopped, the victim's counts do not move", async () => {
    const epoch = await p.rewards.read.currentEpoch();
    const channelsOf = (k: LocalAccount) => channelsFor(k, epoch, 256n, 60_000);
    // The victim's node builds a circuit; its hellos are seen (say, by a hostile first hop's operator
    // who also runs the others, or leaked from memory).
    const victim = channelsOf(key);
    const seen = new Map<string, PayHello>();
    const sign = victim.hello.bind(victim);
    victim.hello = async (relayer, binding) => {
      const hello = await sign(relayer, binding);
      seen.set(relayer.toLowerCase(), hello);
      return hello;
    };
    const honest = await circuitFor(victim);
    for (let i = 0; i < 100 && seen.size < operators.length; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(seen.size, operators.length);
    honest.circuit.close();
    honest.link.close();
    await new Promise((r) => setTimeout(r, 200));
    const before = gates.map((g) => g.counted(key.address));
    // The attacker names the victim's key with those very hellos on its own circuit.
    const attacker = channelsOf(privateKeyToAccount(generatePrivateKey()));
    attacker.hello = async (relayer) => seen.get(relayer.toLowerCase())!;
    const { circuit, link } = await circuitFor(attacker);
    const closed = new Promise<CircuitError>((resolve) => circuit.onClose(resolve));
    await assert.rejects(fetchThrough(circuit, blob.port, `/blob/${1024 * 1024}`));
    const error = await closed;
    assert.equal(error.reason, DestroyReason.payment);
    assert.match(error.message, /stopped serving this payer: bad-receipt/);
    link.close();
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      gates.map((g) => g.counted(key.address)),
      before,
      "no cell of the attacker's circuit was counted for the victim",
    );
  });
  it("a hop that dies with the payer's cells in flight leaves it in good standing: the next circuit's receipt is taken", async (t) => {
    // The third hop is reached through a loopback TCP relay that the test can hold and cut: what
    // the payer sent once it is held never arrives, as when the middle relay dies mid-upload.
    const held: Socket[] = [];
    let hold = false;
    const cut: Server = createServer((down) => {
      const up = tcpConnect(relays[2]!.port, "127.0.0.1");
      held.push(down, up);
      for (const s of [down, up]) s.on("error", () => {});
      up.pipe(down);
      down.on("data", (data: Buffer) => {
        if (!hold) up.write(data);
      });
    });
    const cutPort = await listen(cut, "127.0.0.1");
    const echo = echoServer();
    const echoPort = await listen(echo, "127.0.0.1");
    t.after(async () => {
      for (const s of held) s.destroy();
      await closeServer(cut);
      await closeServer(echo);
    });
    // A receipt every 64 cells, and one for everything once the traffic pauses for 200 ms.
    const { key: uploader, channels, epoch } = await lockedPayer(p.wallets[8]!, 200);
    const exit = getAddress(operators[2]!.account.address);
    const viaCut = hopsOf(relays).map((h, i) => (i === 2 ? { ...h, port: cutPort } : h));
    const first = await circuitFor(channels, viaCut);
    t.after(() => first.link.close());
    const closed = new Promise<CircuitError>((resolve) => first.circuit.onClose(resolve));
    const stream = await first.circuit.openStream({ type: "ipv4", host: "127.0.0.1", port: echoPort });
    stream.on("error", () => {});
    stream.resume();
    const chunk = Buffer.alloc(64 * 1024, 7);
    let writing = true;
    const pump = async () => {
      for (let i = 0; i < 10_000 && writing; i++)
        if (!stream.write(chunk)) await new Promise((r) => stream.once("drain", r).once("close", r));
    };
    void pump();
    t.after(() => {
      writing = false;
      stream.destroy();
    });
    await waitFor(() => gates[2]!.counted(uploader.address).cells > 200n, 10_000, "the exit carrying the upload");
    hold = true;
    // The exit acknowledged what it got: the payer's window lets it send that much more, all of
    // which stays in the hold (net of echoed cells still on their way back, which drain).
    await waitFor(
      () => channels.counted(exit).cells > gates[2]!.counted(uploader.address).cells + 32n,
      10_000,
      "cells the payer sent that the exit never got",
    );
    const lost = channels.counted(exit).cells - gates[2]!.counted(uploader.address).cells;
    writing = false;
    for (const s of held) s.destroy();
    await closed;

    // A new circuit straight to the exit: once the download is done, the payer's receipt for
    // everything is ahead of the exit's count by the lost cells; the exit takes them (the payer
    // pays for them) and goes on serving.
    const again = await circuitFor(channels);
    t.after(() => again.link.close());
    const size = 1024 * 1024;
    assert.equal(await fetchThrough(again.circuit, blob.port, `/blob/${size}`), expectedSha256(size));
    // Traffic paused: the payer's receipt for everything it counted (all but the cell carrying
    // that receipt) is taken and kept for settlement, and the circuit still serves.
    const keptCells = () =>
      stores[2]!.queued(epoch).find((r) => r.key.toLowerCase() === uploader.address.toLowerCase())?.cells ?? 0n;
    await waitFor(() => keptCells() + 1n >= channels.counted(exit).cells, 5_000, "the exit to keep the receipt");
    await new Promise((r) => setTimeout(r, 500)); // two more idle receipts
    assert.equal(again.circuit.closed, false, `the exit still serves the payer (${lost} cells were lost in flight)`);
    console.log(`    ${lost} cells in flight when the hop died; the next receipt was taken`);
  });
  it("an idle paid circuit covers its traffic with one round of receipts, then sends none", async (t) => {
    const { key: idler, channels, epoch } = await lockedPayer(p.wallets[9]!, 50);
    const { circuit, link } = await circuitFor(channels);
    t.after(() => link.close());
    const size = 256 * 1024;
    assert.equal(await fetchThrough(circuit, blob.port, `/blob/${size}`), expectedSha256(size));
    await new Promise((r) => setTimeout(r, 300)); // the idle round after the download
    const seen = gates.map(() => 0);
    const originals = gates.map((g) => g.receipt.bind(g));
    for (const [i, g] of gates.entries())
      g.receipt = (id, at, r) => {
        if (r.key.toLowerCase() === idler.address.toLowerCase()) seen[i]!++;
        return originals[i]!(id, at, r);
      };
    t.after(() => {
      for (const [i, g] of gates.entries()) g.receipt = originals[i]!;
    });
    await new Promise((r) => setTimeout(r, 500)); // ten receipt intervals
    assert.deepEqual(seen, [0, 0, 0], "no receipt while the circuit is idle");
    for (const [i, o] of operators.entries()) {
      const kept = stores[i]!.queued(epoch).find((r) => r.key.toLowerCase() === idler.address.toLowerCase());
      const counted = gates[i]!.counted(idler.address).cells;
      assert.ok(
        kept && counted - kept.cells <= 8n,
        `hop ${i + 1}: the kept receipt covers all but the receipts' cells`,
      );
      assert.equal(channels.counted(getAddress(o.account.address)).cells, counted, `hop ${i + 1}: both sides agree`);
    }
    assert.equal(circuit.closed, false);

    // A second circuit carries a few cells and closes before any receipt covers them: the idle
    // circuit, through the same relays, sends those hops their receipts.
    const other = await circuitFor(channels);
    t.after(() => other.link.close());
    await new Promise((r) => setTimeout(r, 100)); // its hellos are out
    // A probe to each hop (3 cells on the first, 2, 1): after a pause, each makes a receipt due at
    // once, signed for this circuit, which closes before it can leave.
    void other.circuit.probe(1_000);
    const tail = operators.map((o) => channels.counted(getAddress(o.account.address)).cells);
    other.circuit.close();
    await waitFor(
      () =>
        operators.every((o, i) => {
          const kept = stores[i]!.queued(epoch).find((r) => r.key.toLowerCase() === idler.address.toLowerCase());
          return (kept?.cells ?? 0n) >= tail[i]! && !channels.unsigned(getAddress(o.account.address));
        }),
      5_000,
      "the idle circuit to send the closed circuit's tail",
    );
  });
  it("a build that fails before the hellos leaves no cell counted on either side, as the relays do", async () => {
    const failing = await buyCredit(p, p.wallets[10]!, 1n * X0T);
    const channels = channelsFor(failing, 0n, 64n, 60_000);
    const dead = { ...hopsOf(relays)[1]!, port: await closedPort() };
    for (let attempt = 0; attempt < 3; attempt++)
      await assert.rejects(circuitFor(channels, [hopsOf(relays)[0]!, dead, hopsOf(relays)[2]!]));
    const first = getAddress(operators[0]!.account.address);
    assert.deepEqual(channels.counted(first), { cells: 0n, bytes: 0n }, "the payer counted nothing");
    assert.deepEqual(gates[0]!.counted(failing.address), { cells: 0n, bytes: 0n }, "nor did the first hop");
  });
});

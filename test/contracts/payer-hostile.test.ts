/**
 * A hostile relay against a paying entry: it destroys circuits through it with the payment reason
 * but without the signed PAY_STOP that names a hop (any relay on a path can send such a DESTROY),
 * and it also stops the payer for real. One relay must not pass for two: the entry refuses new
 * streams outright (REP 0x02) only once two different relays have stopped the payer, so it goes on
 * serving through the honest relays, and avoids the hostile one.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect as connectTcp } from "node:net";
import { after, before, describe, it } from "node:test";
import { getAddress } from "viem";
import { CELL_PRICE_BYTES } from "@x0tta6bl4/relayer/accounting/gate";
import { type EntryNode, startEntry } from "../../relayer/src/node/entry.ts";
import type { RelayNode } from "../../relayer/src/node/relay.ts";
import { DestroyReason } from "../../relayer/src/wire/cell.ts";
import { curl, readBytes } from "../helpers/net.ts";
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

describe("a relay that sends bare payment DESTROYs and stops the payer once", async () => {
  const connection = await connect();
  const p = await deployProtocol(connection);
  const operators = p.wallets.slice(3, 7); // hostile, two honest middles, the honest exit
  const ALLOWANCE_CELLS = 64n;
  let relays: RelayNode[];
  let entry: EntryNode;
  let blob: Awaited<ReturnType<typeof startBlobServer>>;
  let armed = false;
  let bare = 0;
  let hostileGate: ReturnType<typeof paymentGateFor>["gate"];
  let keyAddress: `0x${string}`;

  before(async () => {
    for (const o of operators) await registerRelayer(p, o);
    const key = await buyCredit(p, p.wallets[7]!, 10n * X0T);
    keyAddress = key.address;
    // The hostile relay's gate extends a 64-cell allowance and no lock was made: it stops the
    // payer for real (a PAY_STOP naming it) once its paths carried that much.
    const hostile = paymentGateFor(p, getAddress(operators[0]!.account.address), {
      allowanceBytes: ALLOWANCE_CELLS * CELL_PRICE_BYTES,
      slackCells: 4_096n,
    });
    hostileGate = hostile.gate;
    relays = await startRelays(1, {
      payments: hostile.gate,
      checkPayHello: hostile.checkPayHello,
      // Armed, it destroys a built circuit with the payment reason at the first small cell it
      // passes on (a PAY_HELLO, a BEGIN: not the build's EXTENDs, which carry public keys).
      tamperForward: (body) => {
        if (!armed || body.length >= 1_500) return;
        bare++;
        return { destroy: DestroyReason.payment };
      },
    });
    relays.push(...(await startRelays(3))); // free relays: they ignore the payment messages
    const directory = directoryOf(relays, operators, ["hostile", "a", "b", "exit"]);
    const payer = payerChannels(p, key, await p.rewards.read.currentEpoch(), { everyCells: 16n, everyMs: 1_000 });
    entry = await startEntry({ socksPort: 0, hops: 3, directory: () => directory, payer, paymentBackoffMs: 60_000 });
    blob = await startBlobServer();
  });
  after(async () => {
    await blob?.close();
    await entry?.close();
    for (const r of relays ?? []) await r.close();
  });

  it("keeps serving through the honest relays: a bare DESTROY counts for no relay", async () => {
    const port = entry.socks.address.port;
    /** A SOCKS5 CONNECT to the blob server as `user` (its own isolation class); the reply code. */
    const request = async (user: string) => {
      const socket = connectTcp(port, "127.0.0.1");
      try {
        await once(socket, "connect");
        socket.write(Buffer.from([5, 1, 2]));
        await readBytes(socket, 2, 10_000);
        socket.write(Buffer.concat([Buffer.from([1, user.length]), Buffer.from(user), Buffer.from([1, 0x78])]));
        await readBytes(socket, 2, 10_000);
        socket.write(Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, blob.port >> 8, blob.port & 0xff]));
        return (await readBytes(socket, 10, 20_000))[1];
      } finally {
        socket.destroy();
      }
    };
    // Bare payment DESTROYs on circuits through the hostile relay (a new isolation class each
    // time: a new circuit, whose path includes it two times in three).
    armed = true;
    for (let i = 0; i < 30 && bare < 2; i++) await request(`bare${i}`);
    armed = false;
    assert.ok(bare >= 2, `the hostile relay destroyed ${bare} built circuits with the payment reason`);
    // Then it stops the payer for real once its paths carried its allowance.
    const proxy = `socks5h://127.0.0.1:${port}`;
    for (let i = 0; i < 30 && hostileGate.counted(keyAddress).cells <= ALLOWANCE_CELLS; i++)
      await curl(["-x", proxy, "-U", `paid${i}:x`, "-o", "/dev/null", `http://127.0.0.1:${blob.port}/blob/1048576`]);
    assert.ok(hostileGate.counted(keyAddress).cells > ALLOWANCE_CELLS, "the hostile relay stopped the payer");
    await new Promise((r) => setTimeout(r, 500)); // its PAY_STOP and DESTROY reach the entry
    // One relay stopped the payer, however many bare DESTROYs came with it: no REP 0x02; the
    // entry avoids that relay and serves through the others.
    for (let i = 0; i < 3; i++) assert.equal(await request(`after${i}`), 0, "REP 0: served");
  });
});

/**
 * A relay killed (SIGKILL, a real process) at four points of settlement, against a real JSON-RPC
 * chain: after a receipt was accepted and before anything was submitted, after its batch was
 * recorded, after the RPC took the transaction but before its hash was recorded, and after the
 * hash was recorded but before the outcome. Restarted, the relay submits what was left; every
 * receipt is paid exactly once (the chain's channel pays exactly the receipt's bytes, one
 * CreditConsumed per receipt) and every batch ends confirmed or failed, none left open.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { network } from "hardhat";
import { getAddress, parseEventLogs } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { signReceipt } from "@x0tta6bl4/relayer/accounting/receipts";
import { AccountingStore } from "@x0tta6bl4/relayer/accounting/store";
import { buyCredit, deployProtocol, GB, lockFor, registerRelayer, X0T } from "../helpers/protocol.js";
import { freePort } from "../helpers/net.ts";
import { startChain } from "../ops/chain.ts";

const child = join(import.meta.dirname, "fixtures", "settle-child.ts");

/** Runs the settlement child; resolves with its exit code or the signal that ended it. */
function settleProcess(args: string[]): Promise<{ code: number | null; signal: string | null; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--disable-warning=ExperimentalWarning", child, ...args],
      { encoding: "utf8", timeout: 60_000 },
      (error, stdout) => {
        const e = error as (Error & { code?: number; signal?: string }) | null;
        resolve({ code: e ? (e.code ?? null) : 0, signal: e?.signal ?? null, stdout });
      },
    );
  });
}

describe("a relay killed during settlement", async () => {
  const port = await freePort();
  const chain = await startChain(31337, port);
  const rpc = chain.url;
  const dir = await mkdtemp(join(tmpdir(), "x0t-crash-"));
  const deploymentId = `e2e-crash-${port}`;
  after(async () => {
    await chain.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(join("deploy", "ignition", "deployments", deploymentId), { recursive: true, force: true });
  });
  const connection = await network.create({ network: "localhost", override: { url: rpc } });

  it("pays every receipt exactly once whatever point the relay died at", async () => {
    const p = await deployProtocol(connection, {}, deploymentId);
    const [operator, payer] = [p.wallets[3]!, p.wallets[4]!];
    const signerKey = generatePrivateKey();
    await registerRelayer(p, operator, undefined, privateKeyToAccount(signerKey));
    await p.deployer.sendTransaction({ to: privateKeyToAccount(signerKey).address, value: 10n ** 18n });
    const relayer = getAddress(operator.account.address);
    const key = await buyCredit(p, payer, 10n * X0T);
    const db = join(dir, "relay.db");
    const base = ["--rpc", rpc, "--rewards", p.rewards.address, "--operator", relayer, "--signer", signerKey];
    base.push("--db", db);

    const points = ["stored", "batch-recorded", "tx-sent", "hash-recorded"] as const;
    let cells = 0n;
    for (const [round, point] of points.entries()) {
      const epoch = await p.rewards.read.currentEpoch();
      await lockFor(p, payer, relayer, GB / 10n, epoch + 1n);
      // The payer's cumulative receipt for this round, as the relay's gate keeps it on arrival.
      cells += 1_000n;
      const bytes = cells * 5_462n;
      const signed = await signReceipt(key, p.receiptDomain, { relayer, epoch, cells, bytes });
      const receipt = JSON.stringify({
        epoch: String(epoch),
        key: signed.key,
        cells: String(cells),
        bytes: String(bytes),
        r: signed.r,
        vs: signed.vs,
      });
      // The epoch ends; the relay starts settling it and dies at `point`.
      const [, endsAt] = await p.rewards.read.currentEpochEnd();
      await connection.networkHelpers.time.increaseTo(endsAt + 1n);
      const killed = await settleProcess([...base, "--receipt", receipt, "--crash", point]);
      assert.equal(killed.signal, "SIGKILL", `round ${round + 1}: the relay died at ${point}`);
      // Restarted, it finishes the round.
      const restarted = await settleProcess(base);
      assert.equal(restarted.code, 0, `round ${round + 1}: the restarted relay settles (${restarted.stdout})`);
      const channel = await p.credit.read.channelOf([key.address, relayer]);
      assert.equal(channel.cellsPaid, cells, `after a crash at ${point}: the channel paid exactly the receipt`);
      assert.equal(channel.bytesPaid, bytes);
      const store = new AccountingStore(db);
      assert.equal(store.unfinishedBatches().length, 0, "no batch is left open");
      // Killed after the transaction left but before its hash was kept, the relay sends the receipt
      // again: the chain refuses to pay it twice (NothingNewToPay) and the store calls it settled.
      assert.equal(store.outcome(epoch, key.address), point === "tx-sent" ? "settled" : "paid");
      store.close();
    }
    // Each receipt paid once: one CreditConsumed per round, each for the round's new cells only.
    const consumed = parseEventLogs({
      abi: p.credit.abi,
      eventName: "CreditConsumed",
      logs: await p.publicClient.getLogs({ address: p.credit.address, fromBlock: 0n }),
    });
    assert.deepEqual(
      consumed.map((e) => e.args.cells),
      points.map(() => 1_000n),
    );
  });
});

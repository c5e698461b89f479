/**
 * The `x0t` account commands against the in-process chain: what a user and an operator type,
 * with the wallet injected (the command line builds it from X0T_PRIVATE_KEY and --rpc).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { getAddress } from "viem";
import type { AccountClients } from "@x0tta6bl4/relayer/chain/account";
import { AccountUsageError, readDeployment, runAccountCommand } from "../../relayer/src/cli/account.ts";
import { AccountingStore } from "@x0tta6bl4/relayer/accounting/store";
import { initCrypto } from "../../relayer/src/crypto/keys.ts";
import { connect, deployProtocol, fund, GB, type Protocol, registerRelayer, X0T } from "../helpers/protocol.js";

describe("x0t account commands", async () => {
  const connection = await connect();
  let p: Protocol;
  let dir: string;
  let user: AccountClients;
  let operator: AccountClients;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "x0t-account-"));
    p = await deployProtocol(connection);
    const contracts = {
      X0T: p.token.address,
      RelayerRegistry: p.registry.address,
      BandwidthCredit: p.credit.address,
      EpochRewards: p.rewards.address,
    };
    const publicClient = p.publicClient as unknown as AccountClients["public"];
    user = { public: publicClient, wallet: p.wallets[2] as unknown as AccountClients["wallet"], contracts };
    operator = { public: publicClient, wallet: p.wallets[3] as unknown as AccountClients["wallet"], contracts };
    await fund(p, p.wallets[2]!.account.address, 100n * X0T);
    await registerRelayer(p, p.wallets[3]!);
    await fund(p, p.wallets[3]!.account.address, 500n * X0T);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  async function run(clients: AccountClients, ...argv: string[]) {
    const lines: string[] = [];
    const code = await runAccountCommand([...argv, "--json"], (l) => lines.push(l), clients);
    assert.equal(code, 0);
    return JSON.parse(lines.at(-1)!) as Record<string, unknown>;
  }

  it("buys credit with a permit, authorises a key from a new key file, locks for a relay, shows the status", async () => {
    const bought = await run(user, "buy", "--gb", "10");
    assert.equal(bought.action, "buy");
    assert.match(String(bought.hash), /^0x[0-9a-f]{64}$/);
    assert.equal(bought.explorer, undefined, "no public explorer for the local chain");
    const keyFile = join(dir, "client.key");
    const authorized = await run(user, "key", "authorize", "--key-file", keyFile, "--cap-gb", "5");
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const key = await p.credit.read.clientKeys([authorized.key as `0x${string}`]);
    assert.equal(key[0], getAddress(p.wallets[2]!.account.address));
    assert.equal(key[2], 5n * GB);
    await run(user, "lock", "--relayer", p.wallets[3]!.account.address, "--gb", "1.5");
    const status = await run(user, "status");
    assert.equal(status.freeCreditBytes, 8_500_000_000n.toString());
    await run(user, "key", "revoke", "--key", String(authorized.key));
    const revokedAfter = (await p.credit.read.clientKeys([authorized.key as `0x${string}`]))[1];
    assert.equal(revokedAfter, await p.rewards.read.currentEpoch());
  });

  it("stakes, unbonds, reports the relayer and finds nothing to claim yet", async () => {
    await run(operator, "stake", "--amount", "250");
    await run(operator, "unbond", "--amount", "250");
    const status = await run(operator, "status", "--relayer", p.wallets[3]!.account.address);
    const relayer = status.relayer as Record<string, unknown>;
    assert.equal(relayer.unbonding, (250n * X0T).toString());
    assert.equal(relayer.active, true);
    const claim = await run(operator, "claim");
    assert.deepEqual(claim.epochs, []);
    await assert.rejects(run(operator, "withdraw"), /reverted|StillUnbonding/);
  });

  it("registers a relay in one transaction (permit + signer consent) and shows a relay's accounting", async () => {
    await initCrypto();
    const newcomer = { ...operator, wallet: p.wallets[8] as unknown as AccountClients["wallet"] };
    await fund(p, p.wallets[8]!.account.address, 2_000n * X0T);
    const keys = join(dir, "relay.key");
    const signerKey = join(dir, "signer.key");
    const registered = await run(
      newcomer,
      ...["register", "--keys", keys, "--signer-key", signerKey, "--endpoint", "Relay.Example.org:9001"],
      ...["--region", "NL", "--amount", "1000"],
    );
    assert.equal((await stat(signerKey)).mode & 0o777, 0o600);
    const node = await p.registry.read.getNode([p.wallets[8]!.account.address]);
    assert.equal(node.signer, registered.signer);
    assert.equal(node.keysHash, registered.keysHash);
    assert.equal(node.endpoint, "relay.example.org:9001", "endpoints are kept lowercase (unique)");
    assert.equal(node.stake, 1_000n * X0T);
    await assert.rejects(
      run(newcomer, "register", "--keys", keys, "--signer-key", signerKey, "--endpoint", "x:1", "--region", "nl"),
      /--region: expected two capital letters/,
    );

    // A relay's store with one receipt of this epoch and one batch left open by a crash.
    const db = join(dir, "relay.db");
    const store = new AccountingStore(db);
    const epoch = await p.rewards.read.currentEpoch();
    const zero = `0x${"00".repeat(32)}` as const;
    store.saveReceipt(epoch, { key: p.wallets[9]!.account.address, cells: 1_234n, bytes_: 5_000n, r: zero, vs: zero });
    store.beginBatch(epoch, [p.wallets[9]!.account.address]);
    // Two attestations of the last epoch's uptime, the bonus claim not sent yet.
    for (const signer of [p.wallets[10]!, p.wallets[11]!])
      store.saveAttestation(epoch - 1n, {
        signer: signer.account.address,
        probes: 120,
        answered: 120,
        measurements: zero,
        r: zero,
        vs: zero,
      });
    store.close();
    const status = await run(operator, "status", "--accounting", db);
    assert.deepEqual(status.accounting, {
      payersThisEpoch: 1,
      cellsThisEpoch: "1234",
      queuedEpochs: [],
      queued: 0,
      unfinishedBatches: 1,
      uptime: [{ epoch: (epoch - 1n).toString(), attestations: 2, claim: "waiting" }],
    });
    await assert.rejects(
      run(operator, "status", "--accounting", join(dir, "none.db")),
      /--accounting: .* does not exist/,
    );
  });

  it("names the flag or file that is wrong", async () => {
    await assert.rejects(
      run(user, "buy", "--gb", "ten"),
      (e: Error) => e instanceof AccountUsageError && /--gb/.test(e.message),
    );
    await assert.rejects(run(user, "lock", "--relayer", "0x12", "--gb", "1"), /--relayer: expected a 0x address/);
    await assert.rejects(run(user, "key", "rotate"), /usage: x0t key authorize\|revoke/);
    await assert.rejects(run(user, "fly"), /usage: x0t register\|buy\|key/);
    assert.throws(() => readDeployment(join(dir, "missing.json")), /--deployment: .* does not exist/);
    const bad = join(dir, "bad.json");
    await writeFile(bad, JSON.stringify({ chainId: 1, contracts: { X0T: "0x1" } }));
    assert.throws(() => readDeployment(bad), /has no address for contracts.X0T/);
  });
});

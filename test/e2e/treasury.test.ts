/**
 * `x0t treasury propose|sign|execute` against a real JSON-RPC chain (a Hardhat node on loopback)
 * with the real Safe 1.5 deployed by the Treasury module: the council pays out only with its
 * threshold of signatures, and never administers the Safe.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { network } from "hardhat";
import { type Address, createPublicClient, erc20Abi, http } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { runTreasuryCommand } from "../../relayer/src/cli/treasury.ts";
import GovernanceModule from "../../deploy/ignition/modules/Governance.js";
import TreasuryModule from "../../deploy/ignition/modules/Treasury.js";
import { freePort } from "../helpers/net.ts";
import { startChain } from "../ops/chain.ts";

const MNEMONIC = "test test test test test test test test test test test junk"; // Hardhat's public test accounts
const keyOf = (i: number) =>
  `0x${Buffer.from(mnemonicToAccount(MNEMONIC, { addressIndex: i }).getHdKey().privateKey!).toString("hex")}`;

describe("x0t treasury", async () => {
  const port = await freePort();
  const chain = await startChain(31337, port);
  const rpc = chain.url;
  const dir = await mkdtemp(join(tmpdir(), "x0t-treasury-"));
  // Its own Ignition journal, so that it never meets npm start's (chain-31337) or another test's.
  const deploymentId = `e2e-treasury-${port}`;
  after(async () => {
    await chain.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(join("deploy", "ignition", "deployments", deploymentId), { recursive: true, force: true });
  });
  const client = createPublicClient({ transport: http(rpc, { retryCount: 0 }) });
  const connection = await network.create({ network: "localhost", override: { url: rpc } });
  const council = [1, 2, 3].map((i) => mnemonicToAccount(MNEMONIC, { addressIndex: i }).address);
  // The second deployment in the same journal must repeat the first one's parameters.
  const treasuryParameters = { council, threshold: 2, minDelay: 60 };
  const treasury = (await connection.ignition.deploy(TreasuryModule, {
    displayUi: false,
    deploymentId,
    parameters: { Treasury: treasuryParameters },
  })) as unknown as Record<"safe" | "timelock" | "guard", { address: Address }>;
  const { token } = await connection.ignition.deploy(GovernanceModule, {
    displayUi: false,
    deploymentId,
    parameters: {
      Protocol: { treasury: treasury.safe.address },
      Governance: { timelock: treasury.timelock.address, safe: treasury.safe.address, guard: treasury.guard.address },
    },
  });
  const recipient = mnemonicToAccount(MNEMONIC, { addressIndex: 7 }).address;
  const file = join(dir, "payout.json");
  const lines: string[] = [];
  const run = (args: string[], keyIndex?: number) => {
    if (keyIndex === undefined) delete process.env.X0T_PRIVATE_KEY;
    else process.env.X0T_PRIVATE_KEY = keyOf(keyIndex);
    return runTreasuryCommand(args, (l) => lines.push(l));
  };
  const balance = () =>
    client.readContract({ address: token.address, abi: erc20Abi, functionName: "balanceOf", args: [recipient] });

  it("pays out only once the threshold of council members has signed", async () => {
    assert.equal(
      await run([
        "propose",
        "--rpc",
        rpc,
        "--safe",
        treasury.safe.address,
        "--token",
        token.address,
        "--to",
        recipient,
        "--amount",
        "50000",
        "--description",
        "Snapshot 0xabc",
        "--out",
        file,
      ]),
      0,
    );
    assert.equal(JSON.parse(await readFile(file, "utf8")).tx.nonce, "0");
    await assert.rejects(run(["sign", "--rpc", rpc, "--file", file], 8), /is not an owner/);
    assert.equal(await run(["sign", "--rpc", rpc, "--file", file], 1), 0);
    await assert.rejects(run(["execute", "--rpc", rpc, "--file", file], 9), /1 of 2 signatures/);
    assert.equal(await run(["sign", "--rpc", rpc, "--file", file], 3), 0);
    const before = await balance();
    assert.equal(await run(["execute", "--rpc", rpc, "--file", file], 9), 0);
    assert.equal((await balance()) - before, 50_000n * 10n ** 18n - 500n * 10n ** 18n, "50,000 X0T less the 1% burn");
    // The same file cannot be replayed: the Safe's nonce moved on.
    await assert.rejects(run(["sign", "--rpc", rpc, "--file", file], 2), /nonce is 1/);
    await assert.rejects(run(["execute", "--rpc", rpc, "--file", file], 9));
  });

  it("refuses, before anyone signs, a payout above the council's 500,000 X0T cap per period", async () => {
    const big = join(dir, "big.json");
    const args = ["--rpc", rpc, "--safe", treasury.safe.address, "--token", token.address, "--to", recipient];
    await assert.rejects(
      run(["propose", ...args, "--amount", "450001", "--out", big]),
      /above the council's cap: 450000000000000000000000 of 500000000000000000000000 wei left/,
    );
    await assert.rejects(
      run(["propose", ...args.slice(0, 4), "--token", recipient, "--to", recipient, "--amount", "1", "--out", big]),
      /may only pay out/,
    );
  });

  it("refuses bad input with the flag's name", async () => {
    await assert.rejects(
      run([
        "propose",
        "--rpc",
        rpc,
        "--safe",
        "0x12",
        "--token",
        token.address,
        "--to",
        recipient,
        "--amount",
        "1",
        "--out",
        file,
      ]),
      /--safe/,
    );
    await assert.rejects(run(["sign", "--rpc", rpc, "--file", file]), /X0T_PRIVATE_KEY/);
    await assert.rejects(run(["vote", "--rpc", rpc]), /usage/);
  });
});

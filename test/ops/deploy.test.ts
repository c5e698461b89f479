/**
 * `npm run deploy:base-sepolia`, for real, against a local stand-in for Base Sepolia: a
 * `hardhat node` with chain id 84532 on loopback, Safe 1.5's canonical contracts at their canonical
 * addresses (test/ops/chain.ts), the real deploy script with only BASE_SEPOLIA_RPC_URL and
 * DEPLOYER_PRIVATE_KEY, and a local explorer API (test/ops/fake-explorer.ts) that verifies what it
 * is sent. It proves the refusals (missing variable, wrong chain, no Safe, unfunded deployer), a
 * run killed half-way that resumes, the verification, and that the relayer, the web app and the
 * Snapshot space read the deployments file the run wrote.
 *
 * The Ignition journal goes to deploy/ignition/deployments/ops-test-<pid>/ (git-ignored, removed
 * after) and the deployments file to a temporary folder: the committed chain-84532 journal and
 * deployments/84532.json are never touched.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Address, type Hex, createPublicClient, getAddress, http, parseEther, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { readDeployment } from "../../relayer/src/cli/account.ts";
import { GOVERNANCE_CONTRACTS, PROTOCOL_CONTRACTS, loadDeployment } from "../../relayer/src/deployments/index.ts";
import { DEPLOYMENT_GAS, DeployError, checkCanonicalSafe } from "../../scripts/deploy-checks.ts";
import { closedPort } from "../helpers/net.ts";
import { type LocalChain, hardhatCli, placeCanonicalSafe, startChain } from "./chain.ts";
import { FakeExplorer } from "./fake-explorer.ts";

const ROOT = resolve(".");
const deploymentId = `ops-test-${process.pid}`;
const journalDir = join(ROOT, "deploy", "ignition", "deployments", deploymentId);
const SECRET = "s3cret-api-key-in-the-url";

type Run = { code: number | null; output: string };

/** SIGKILL to the child's whole process group (npm → sh → node); a group already gone is fine. */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** Runs a command to its end (bounded), output interleaved; `onOutput` may kill it early. */
function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  { timeoutMs = 240_000, cwd = ROOT }: { timeoutMs?: number; cwd?: string } = {},
): Promise<Run> & { child: ChildProcess } {
  const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  const done = new Promise<Run>((resolvePromise) => {
    const timer = setTimeout(() => {
      output += `\n[test] killed after ${timeoutMs} ms`;
      killGroup(child);
    }, timeoutMs);
    child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output });
    });
  });
  return Object.assign(done, { child });
}

describe("npm run deploy:base-sepolia against a local chain 84532", { timeout: 600_000 }, () => {
  let chain: LocalChain;
  let other: LocalChain;
  let explorer: FakeExplorer;
  let tmp: string;
  let paramsFile: string;
  let deploymentsDir: string;
  const key = generatePrivateKey();
  const deployer = privateKeyToAccount(key).address;
  const council = [0, 1, 2].map(() => privateKeyToAccount(generatePrivateKey()).address);
  const client = () => createPublicClient({ transport: http(chain.url) });

  /** The environment of a deploy run: only the two variables (and the test's redirections). */
  const envFor = (overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      BASE_SEPOLIA_RPC_URL: `${chain.url}/v2/${SECRET}`,
      DEPLOYER_PRIVATE_KEY: key,
      X0T_DEPLOY_PARAMETERS: paramsFile,
      X0T_DEPLOYMENT_ID: deploymentId,
      X0T_DEPLOYMENTS_DIR: deploymentsDir,
      X0T_SKIP_VERIFY: "1",
      ...overrides,
    };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    return env;
  };
  // What `npm run deploy:base-sepolia` runs; --no-compile because runs in parallel would race on
  // Hardhat's compile cache (the test runner compiled already; the last run goes through npm).
  const deployScript = (env: NodeJS.ProcessEnv) =>
    run(process.execPath, [hardhatCli(), "run", "--no-compile", "scripts/deploy.ts", "--network", "baseSepolia"], env);
  const setBalance = (wei: bigint) => chain.rpc("hardhat_setBalance", [deployer, toHex(wei)]);
  const nonce = () => client().getTransactionCount({ address: deployer });

  before(async () => {
    const [p1, p2] = [await closedPort(), await closedPort()];
    [chain, other] = await Promise.all([startChain(84532, p1), startChain(31337, p2)]);
    // Base Sepolia makes a block every 2 s; here every 100 ms, so Ignition's 5 confirmations come.
    await chain.rpc("evm_setIntervalMining", [100]);
    explorer = new FakeExplorer(chain.url, {
      // soljson takes seconds per contract: the token is compiled and compared, the rest checked.
      compile: (s) => s.explorer === "etherscan" && s.contractname.endsWith(":X0T"),
    });
    await explorer.start();
    tmp = await mkdtemp(join(tmpdir(), "x0t-ops-deploy-"));
    deploymentsDir = join(tmp, "deployments");
    // The example parameters with real owners (the example's 0x…01 is Safe's sentinel).
    const example = JSON.parse(await readFile("deploy/ignition/parameters/base-sepolia.example.json", "utf8")) as {
      Treasury: Record<string, unknown>;
      Governance: Record<string, unknown>;
    };
    example.Treasury.council = council;
    example.Treasury.vestingBeneficiary = privateKeyToAccount(generatePrivateKey()).address;
    example.Governance.guardian = privateKeyToAccount(generatePrivateKey()).address;
    paramsFile = join(tmp, "base-sepolia.json");
    await writeFile(paramsFile, JSON.stringify(example, null, 2));
  });

  after(async () => {
    await Promise.all([chain?.stop(), other?.stop(), explorer?.stop()]);
    await rm(journalDir, { recursive: true, force: true });
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("refuses a chain without Safe 1.5's canonical contracts, then finds them placed by CREATE2 with the listed code hashes", async () => {
    await assert.rejects(
      checkCanonicalSafe(client(), 84532),
      (e: unknown) =>
        e instanceof DeployError &&
        /canonical SafeL2 singleton is not deployed at 0xEdd160fEBBD92E350D4D398fb636302fccd67C7e/.test(e.message),
    );
    const placed = await placeCanonicalSafe(chain);
    const found = await checkCanonicalSafe(client(), 84532);
    assert.deepEqual(found, placed);
    assert.equal(found?.factory, "0x14F2982D601c9458F93bd70B218933A6f8165e7b");
  });

  it("refuses before sending anything: a missing variable, a wrong chain, an unfunded or underfunded deployer", async () => {
    await setBalance(0n);
    const [noUrl, noKey, badKey, wrongChain, unfunded] = await Promise.all([
      deployScript(envFor({ BASE_SEPOLIA_RPC_URL: undefined })),
      deployScript(envFor({ DEPLOYER_PRIVATE_KEY: undefined })),
      deployScript(envFor({ DEPLOYER_PRIVATE_KEY: "0x1234" })),
      deployScript(envFor({ BASE_SEPOLIA_RPC_URL: `${other.url}/v2/${SECRET}` })),
      deployScript(envFor()),
    ]);
    for (const r of [noUrl, noKey, badKey, wrongChain, unfunded]) {
      assert.equal(r.code, 1, r.output);
      assert.ok(!r.output.includes(SECRET), "the RPC URL's path never reaches the output");
      assert.ok(!r.output.includes(key.slice(2)), "the key never reaches the output");
    }
    assert.match(
      noUrl.output,
      /deploy: BASE_SEPOLIA_RPC_URL is not set: it is a JSON-RPC URL .*npx hardhat keystore set BASE_SEPOLIA_RPC_URL/,
    );
    assert.match(
      noKey.output,
      /deploy: DEPLOYER_PRIVATE_KEY is not set: it is the deployer's private key .*keystore set DEPLOYER_PRIVATE_KEY/,
    );
    assert.match(
      badKey.output,
      /deploy: DEPLOYER_PRIVATE_KEY is not a private key: expected 0x followed by 64 hex digits/,
    );
    assert.ok(!badKey.output.includes("0x1234"), "not even a malformed key is echoed");
    assert.match(
      wrongChain.output,
      /deploy: BASE_SEPOLIA_RPC_URL \(host 127\.0\.0\.1:\d+\) answers for a local Hardhat chain \(chain id 31337\), not Base Sepolia \(84532\): nothing was sent/,
    );
    assert.match(
      unfunded.output,
      new RegExp(
        `deploy: the deployer ${deployer} \\(DEPLOYER_PRIVATE_KEY\\) holds no ETH on Base Sepolia: send it at least [\\d.]+ ETH`,
      ),
    );
    await setBalance(parseEther("0.001"));
    const underfunded = await deployScript(envFor());
    assert.equal(underfunded.code, 1, underfunded.output);
    assert.match(
      underfunded.output,
      /holds 0\.001 ETH on Base Sepolia; the deployment needs about [\d.]+ ETH .*nothing was sent/,
    );
    assert.equal(await nonce(), 0, "no transaction left the deployer");
    assert.ok(!existsSync(journalDir), "no journal was started");
  });

  let beforeKill: Record<string, string> = {};

  it("a run killed half-way leaves a journal; with 1 wei left the resume stops with what to do", async () => {
    await setBalance(parseEther("10"));
    const killed = deployScript(envFor());
    // Kill the whole process group once Ignition has recorded three finished deployments.
    const deadline = Date.now() + 180_000;
    const finished = () =>
      existsSync(join(journalDir, "journal.jsonl"))
        ? readFileSync(join(journalDir, "journal.jsonl"), "utf8").split('"DEPLOYMENT_EXECUTION_STATE_COMPLETE"')
            .length - 1
        : 0;
    while (finished() < 3 && killed.child.exitCode === null && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    assert.equal(killed.child.exitCode, null, "the run was still going when it was killed");
    killGroup(killed.child);
    await killed;
    beforeKill = JSON.parse(readFileSync(join(journalDir, "deployed_addresses.json"), "utf8")) as Record<
      string,
      string
    >;
    assert.ok(Object.keys(beforeKill).length >= 3, JSON.stringify(beforeKill));
    assert.equal(beforeKill["Governance#QuadraticGovernor"], undefined, "the run did not finish");
    assert.ok(!existsSync(join(deploymentsDir, "84532.json")), "no deployments file from a half-finished run");

    await setBalance(1n);
    const broke = await deployScript(envFor());
    assert.equal(broke.code, 1, broke.output);
    assert.match(broke.output, /resuming the half-finished deployment ops-test-\d+/);
    assert.match(
      broke.output,
      /deploy: the deployer ran out of ETH mid-deployment: fund the account of DEPLOYER_PRIVATE_KEY and run the same command again — Ignition resumes from deploy\/ignition\/deployments\/ops-test-\d+/,
    );
  });

  it("the same command resumes, deploys everything through the canonical factory, writes deployments/84532.json and verifies on the explorer", async () => {
    await setBalance(parseEther("10"));
    const done = await run("npm", ["run", "deploy:base-sepolia"], {
      ...envFor({ X0T_SKIP_VERIFY: undefined, ETHERSCAN_API_KEY: "local-test-key" }),
      X0T_ETHERSCAN_API_URL: `${explorer.url}/etherscan/api`,
      X0T_BLOCKSCOUT_API_URL: `${explorer.url}/blockscout/api`,
    });
    assert.equal(done.code, 0, done.output);
    assert.match(done.output, /resuming the half-finished deployment/);
    // The send that failed for lack of funds was journaled but never reached the chain.
    assert.match(
      done.output,
      /the earlier run prepared \S+'s transaction \(nonce \d+\) but it never reached the chain/,
    );
    assert.match(done.output, /verified every contract of ops-test-\d+ on baseSepolia's explorer/);
    assert.ok(!done.output.includes(SECRET) && !done.output.includes(key.slice(2)), "no secret in the output");

    // Ignition kept what the killed run had deployed.
    const addresses = JSON.parse(readFileSync(join(journalDir, "deployed_addresses.json"), "utf8")) as Record<
      string,
      string
    >;
    for (const [future, address] of Object.entries(beforeKill)) assert.equal(addresses[future], address, future);

    const file = join(deploymentsDir, "84532.json");
    const text = readFileSync(file, "utf8");
    assert.ok(!text.includes(SECRET) && !text.includes("127.0.0.1"), "the public RPC URL, not the deployer's");
    const deployment = loadDeployment(84532, { root: tmp, require: [...PROTOCOL_CONTRACTS, ...GOVERNANCE_CONTRACTS] });
    assert.equal(deployment.rpcUrl, "https://sepolia.base.org");
    assert.equal(deployment.deployer, deployer);
    assert.equal(deployment.contracts.X0T, getAddress(addresses["Protocol#X0T"]!));
    assert.equal(deployment.contracts.TreasurySafe, getAddress(addresses["Treasury#Safe"]!));

    // On-chain: the Safe is a proxy of the canonical singleton with the council, 2 of 3.
    const c = client();
    const safe = deployment.contracts.TreasurySafe!;
    const slot0 = await c.getStorageAt({ address: safe, slot: "0x0" });
    assert.equal(getAddress(`0x${slot0!.slice(-40)}`), "0xEdd160fEBBD92E350D4D398fb636302fccd67C7e");
    const safeAbi = [
      { type: "function", name: "getOwners", stateMutability: "view", inputs: [], outputs: [{ type: "address[]" }] },
      { type: "function", name: "getThreshold", stateMutability: "view", inputs: [], outputs: [{ type: "uint256" }] },
    ] as const;
    assert.deepEqual([...(await c.readContract({ address: safe, abi: safeAbi, functionName: "getOwners" }))], council);
    assert.equal(await c.readContract({ address: safe, abi: safeAbi, functionName: "getThreshold" }), 2n);
    const erc20 = [
      {
        type: "function",
        name: "balanceOf",
        stateMutability: "view",
        inputs: [{ type: "address" }],
        outputs: [{ type: "uint256" }],
      },
    ] as const;
    const balanceOf = (a: Address) =>
      c.readContract({ address: deployment.contracts.X0T, abi: erc20, functionName: "balanceOf", args: [a] });
    assert.equal(await balanceOf(safe), 300_000_000n * 10n ** 18n);
    assert.equal(await balanceOf(deployment.contracts.GenesisVesting!), 100_000_000n * 10n ** 18n);
    assert.equal(await balanceOf(deployer), 0n);

    // Gas of the whole deployment stays under the estimate the funds check uses.
    let gas = 0n;
    for (const line of readFileSync(join(journalDir, "journal.jsonl"), "utf8").split("\n")) {
      const m = /"type":"TRANSACTION_SEND"/.test(line) ? /"hash":"(0x[0-9a-f]{64})"/.exec(line) : null;
      if (m) gas += (await c.getTransactionReceipt({ hash: m[1] as Hex })).gasUsed;
    }
    assert.ok(gas <= DEPLOYMENT_GAS && gas > (DEPLOYMENT_GAS * 2n) / 3n, `deployment used ${gas} gas`);

    // The explorer: every contract of the file but the Safe proxy, on both explorers, chain 84532.
    const expected = Object.entries(deployment.contracts)
      .filter(([name]) => name !== "TreasurySafe")
      .map(([, a]) => a.toLowerCase());
    for (const which of ["etherscan", "blockscout"] as const) {
      const passed = new Set(
        explorer.submissions
          .filter((s) => s.explorer === which && s.verdict === "Pass - Verified")
          .map((s) => s.contractaddress.toLowerCase()),
      );
      for (const a of expected) assert.ok(passed.has(a), `${which} verified ${a}`);
    }
    const etherscan = explorer.requests.filter((r) => r.explorer === "etherscan");
    assert.ok(
      etherscan.length > 0 &&
        etherscan.every((r) => r.query.chainid === "84532" && r.query.apikey === "local-test-key"),
    );
    const token = explorer.submissions.filter((s) => s.explorer === "etherscan" && s.contractname.endsWith(":X0T"));
    assert.equal(token.at(-1)?.verdict, "Pass - Verified", "the token's source compiles to the code on the chain");
    assert.match(token.at(-1)!.compilerversion, /^v0\.8\.30\+commit\.[0-9a-f]{8}$/);
  });

  it("verify alone: passes when already verified, fails on an unreachable explorer and without a network", async () => {
    const env = {
      ...envFor({ DEPLOYER_PRIVATE_KEY: undefined, ETHERSCAN_API_KEY: "local-test-key" }),
      X0T_ETHERSCAN_API_URL: `${explorer.url}/etherscan/api`,
      X0T_BLOCKSCOUT_API_URL: `${explorer.url}/blockscout/api`,
    };
    const script = "scripts/verify-deployment.ts";
    const closed = await closedPort();
    const [again, unreachable, noNetwork] = await Promise.all([
      run(process.execPath, [script, deploymentId, "baseSepolia"], env),
      run(process.execPath, [script, deploymentId, "baseSepolia"], {
        ...env,
        X0T_ETHERSCAN_API_URL: `http://127.0.0.1:${closed}/api`,
      }),
      run(process.execPath, [script, deploymentId], env),
    ]);
    assert.equal(again.code, 0, again.output);
    assert.match(again.output, /has already been verified on Basescan/);
    assert.equal(unreachable.code, 1, unreachable.output);
    assert.match(unreachable.output, /verification of ops-test-\d+ on baseSepolia failed/);
    assert.equal(noNetwork.code, 2);
    assert.match(noNetwork.output, /usage: node scripts\/verify-deployment\.ts <deploymentId> <network>/);
  });

  it("the relayer's CLI, the web app and the Snapshot space read the file the run wrote", async () => {
    const file = join(deploymentsDir, "84532.json");
    const expected = loadDeployment(84532, { root: tmp });
    // relayer/src/cli/account.ts: `x0t … --deployment deployments/84532.json`
    const relayer = readDeployment(file);
    assert.equal(relayer.chainId, 84532);
    assert.equal(relayer.rpcUrl, "https://sepolia.base.org");
    assert.deepEqual(relayer.contracts, {
      X0T: expected.contracts.X0T,
      RelayerRegistry: expected.contracts.RelayerRegistry,
      BandwidthCredit: expected.contracts.BandwidthCredit,
      EpochRewards: expected.contracts.EpochRewards,
    });
    // web/lib/deployments.ts reads <repository>/deployments/84532.json: run it with tmp as the repository.
    const webInTmp = await run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const m = await import(${JSON.stringify(join(ROOT, "web/lib/deployments.ts"))}); console.log(JSON.stringify(m.loadDeployments()));`,
      ],
      { PATH: process.env.PATH },
      { cwd: tmp, timeoutMs: 60_000 },
    );
    assert.equal(webInTmp.code, 0, webInTmp.output);
    const seen = JSON.parse(webInTmp.output.trim()) as { chainId: number; contracts: Record<string, string> }[];
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.chainId, 84532);
    assert.equal(seen[0]!.contracts.X0T, expected.contracts.X0T);
    assert.equal(seen[0]!.contracts.TreasurySafe, expected.contracts.TreasurySafe);

    // The Snapshot space: npm run snapshot:space, from the file.
    const spaceOut = join(tmp, "space.json");
    const space = await run(process.execPath, ["scripts/snapshot-space.ts"], {
      PATH: process.env.PATH,
      X0T_DEPLOYMENTS_DIR: deploymentsDir,
      X0T_SPACE_OUT: spaceOut,
    });
    assert.equal(space.code, 0, space.output);
    const spaceJson = readFileSync(spaceOut, "utf8");
    assert.ok(spaceJson.includes(expected.contracts.VoterRegistry!), "the space scores through this VoterRegistry");
    assert.ok(spaceJson.toLowerCase().includes(expected.contracts.TreasurySafe!.toLowerCase()), "treasury: this Safe");
    await mkdir(join(tmp, "empty"), { recursive: true });
    const missing = await run(process.execPath, ["scripts/snapshot-space.ts"], {
      PATH: process.env.PATH,
      X0T_DEPLOYMENTS_DIR: join(tmp, "empty"),
      X0T_SPACE_OUT: join(tmp, "never.json"),
    });
    assert.equal(missing.code, 1);
    assert.match(missing.output, /84532\.json does not exist: run .*npm run deploy:base-sepolia/);
  });
});

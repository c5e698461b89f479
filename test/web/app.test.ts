/**
 * The web app in a real browser (Debian's Chromium through Playwright) against `next start` and a
 * local chain with the full deployment (the Ignition modules npm start uses). The wallet is an
 * injected EIP-1193 provider signing in Node with a viem account (wallet.ts), so transactions are
 * real: connect, buy 1 GB with a permit, authorise a browser-generated client key, register and
 * stake, add stake, unbond, a withdraw refused with its decoded error; the network page lists the
 * relay; governance: delegate, then a vote on a live proposal moves its tally by the sqrt weight;
 * the treasury Safe's council and balance. Screenshots (desktop and phone) and first-load JS per route go to test-results/web/;
 * axe must report no serious or critical violation.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import AxeBuilder from "@axe-core/playwright";
import { type Browser, type BrowserContext, chromium, type Page } from "@playwright/test";
import { network } from "hardhat";
import {
  type Address,
  createPublicClient,
  createWalletClient,
  encodeFunctionData,
  type Hex,
  http,
  parseAbi,
  verifyTypedData,
} from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { bandwidthCreditAbi, relayerRegistryAbi } from "../../relayer/src/chain/abi.ts";
import GovernanceModule from "../../deploy/ignition/modules/Governance.js";
import TreasuryModule from "../../deploy/ignition/modules/Treasury.js";
import { injectWallet } from "./wallet.ts";
import { attest, installEAS } from "../governance/fixture.ts";

const MNEMONIC = "test test test test test test test test test test test junk"; // Hardhat's public test accounts
const OUT = resolve("test-results/web");
const FIRST_LOAD_BUDGET = 250 * 1024; // PERFORMANCE.md: first-load JS per route, gzip
const require = createRequire(import.meta.url);

async function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A Snapshot hub on loopback: one active proposal; accepts a vote whose EIP-712 signature verifies. */
function fakeSnapshotHub() {
  const proposal = {
    id: `0x${"5a".repeat(32)}`,
    title: "Fund the relay bounty",
    state: "active",
    choices: ["Yes", "No"],
    scores: [0, 0],
    end: 2_000_000_000,
  };
  const votes: { address: Address; choice: number }[] = [];
  const server = createHttpServer((req, res) => {
    res.setHeader("access-control-allow-origin", "*");
    res.setHeader("access-control-allow-headers", "content-type");
    if (req.method === "OPTIONS") return void res.writeHead(204).end();
    let body = "";
    req.on("data", (c: Buffer) => (body += c));
    req.on("end", () => void answer().catch((error) => res.writeHead(500).end(String(error))));
    const answer = async () => {
      if (req.url === "/graphql") return void res.end(JSON.stringify({ data: { proposals: [proposal] } }));
      if (req.url === "/api/msg") {
        const { address, sig, data } = JSON.parse(body);
        const valid = await verifyTypedData({
          address,
          signature: sig,
          domain: data.domain,
          types: data.types,
          primaryType: "Vote",
          message: { ...data.message, timestamp: BigInt(data.message.timestamp) },
        });
        if (!valid || data.message.proposal !== proposal.id || data.message.space !== "x0tta6bl4.eth")
          return void res.writeHead(400).end("invalid signature");
        votes.push({ address, choice: data.message.choice });
        proposal.scores[data.message.choice - 1]! += 1;
        return void res.end(JSON.stringify({ id: "0xvote" }));
      }
      res.writeHead(404).end();
    };
  });
  return { server, votes };
}

describe("web app in Chromium", { timeout: 300_000 }, () => {
  const children: ChildProcess[] = [];
  const tmp = mkdtempSync(join(tmpdir(), "x0t-web-"));
  let deploymentId = "";
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let base = "";
  let rpc = "";
  let contracts: Record<string, Address>;
  let connectionRef: Awaited<ReturnType<typeof network.create>>;
  let easSchema: Hex;
  const hub = fakeSnapshotHub();
  let hubServer: Server | undefined;
  const account = mnemonicToAccount(MNEMONIC, { addressIndex: 0 }); // holds the distributor's genesis X0T
  const axeReport: Record<string, { serious: number; critical: number; ids: string[] }> = {};

  before(async () => {
    mkdirSync(OUT, { recursive: true });
    const chainPort = await freePort();
    rpc = `http://127.0.0.1:${chainPort}`;
    const hardhatCli = join(dirname(require.resolve("hardhat")), "cli.js");
    const chain = spawn(
      process.execPath,
      [hardhatCli, "node", "--hostname", "127.0.0.1", "--port", String(chainPort)],
      {
        stdio: "ignore",
      },
    );
    children.push(chain);
    const client = createPublicClient({ transport: http(rpc, { retryCount: 0 }) });
    await waitFor("the chain", async () => (await client.getChainId()) === 31337, 60_000);
    const connection = await network.create({ network: "localhost", override: { url: rpc } });
    deploymentId = `web-${chainPort}`;
    connectionRef = connection;
    // EAS at its OP-stack predeploy addresses, as on Base Sepolia: voters register with attestations.
    const [deployer, , , , , , , , , , attester] = await connection.viem.getWalletClients();
    easSchema = await installEAS(connection as unknown as Parameters<typeof installEAS>[0], deployer!);
    const council = [1, 2, 3].map((i) => mnemonicToAccount(MNEMONIC, { addressIndex: i }).address);
    const treasuryParameters = { council, threshold: 2, minDelay: 120 };
    const treasury = (await connection.ignition.deploy(TreasuryModule, {
      displayUi: false,
      deploymentId,
      parameters: { Treasury: treasuryParameters },
    })) as unknown as Record<"safe" | "timelock" | "guard" | "executor", { address: Address }>;
    const d = await connection.ignition.deploy(GovernanceModule, {
      displayUi: false,
      deploymentId,
      parameters: {
        Treasury: treasuryParameters,
        Protocol: { epochLength: 60, minAttestations: 1, unbondingDelay: 600, treasury: treasury.safe.address },
        Governance: {
          timelock: treasury.timelock.address,
          safe: treasury.safe.address,
          guard: treasury.guard.address,
          easSchema,
          easAttester: attester!.account.address,
          votingDelay: 60,
          votingPeriod: 120,
        },
      },
    });
    contracts = {
      X0T: d.token.address,
      RelayerRegistry: d.registry.address,
      BandwidthCredit: d.credit.address,
      EpochRewards: d.rewards.address,
      QuadraticGovernor: d.governor.address,
      EASPersonhoodSource: d.personhood.address,
      VoterRegistry: d.voters.address,
      TimelockController: treasury.timelock.address,
      TreasurySafe: treasury.safe.address,
      TreasuryExecutor: treasury.executor.address,
    };
    const deploymentFile = join(tmp, "deployment.json");
    writeFileSync(deploymentFile, JSON.stringify({ chainId: 31337, rpcUrl: rpc, contracts }, null, 2));

    // The app was built by `npm run test:web` (next build); here it only starts, on loopback.
    const hubPort = await freePort();
    hubServer = hub.server.listen(hubPort, "127.0.0.1");
    const webPort = await freePort();
    base = `http://127.0.0.1:${webPort}`;
    const nextBin = require.resolve("next/dist/bin/next", { paths: [resolve("web")] });
    // Its own process group: `next start` runs the server in a child (next-server) that a kill of
    // the parent alone would leave behind.
    const web = spawn(process.execPath, [nextBin, "start", "--hostname", "127.0.0.1", "--port", String(webPort)], {
      cwd: resolve("web"),
      detached: true,
      env: {
        ...process.env,
        X0T_DEPLOYMENT: deploymentFile,
        NEXT_TELEMETRY_DISABLED: "1",
        X0T_SNAPSHOT_HUB: `http://127.0.0.1:${hubPort}`,
        X0T_SNAPSHOT_SPACE: "x0tta6bl4.eth",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push(web);
    await waitFor("next start", async () => (await fetch(base)).ok, 60_000);

    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      headless: true,
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await injectWallet(context, account, rpc, 31337);
    page = await context.newPage();
    page.setDefaultTimeout(30_000);
    page.on("pageerror", (e) => console.error("page error:", e.message));
    page.on("console", (m) => {
      if (m.type() === "error") console.error("page console:", m.text());
    });
  });

  after(async () => {
    writeFileSync(join(OUT, "axe.json"), JSON.stringify(axeReport, null, 2));
    await browser?.close();
    hubServer?.close();
    for (const c of children) {
      try {
        process.kill(-c.pid!, "SIGKILL"); // a process group (next start)
      } catch {
        c.kill("SIGKILL");
      }
    }
    rmSync(tmp, { recursive: true, force: true });
    if (deploymentId) rmSync(join("deploy", "ignition", "deployments", deploymentId), { recursive: true, force: true });
  });

  async function shoot(name: string) {
    await page.screenshot({ path: join(OUT, `${name}-desktop.png`), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(OUT, `${name}-phone.png`), fullPage: true });
    // Responsive: nothing pushes the page wider than a phone.
    assert.ok(
      ((await page.evaluate("document.documentElement.scrollWidth")) as number) <= 390,
      `${name} overflows at 390 px`,
    );
    await page.setViewportSize({ width: 1280, height: 900 });
  }

  async function axe(name: string) {
    const result = await new AxeBuilder({ page }).analyze();
    const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    axeReport[name] = {
      serious: bad.filter((v) => v.impact === "serious").length,
      critical: bad.filter((v) => v.impact === "critical").length,
      ids: result.violations.map((v) => `${v.id} (${v.impact})`),
    };
    assert.deepEqual(
      bad.map((v) => `${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
      [],
      `axe on ${name}`,
    );
  }

  const txStatus = (section: string) => page.locator(`section:has(h2:text-is("${section}")) [data-testid="tx-status"]`);

  it("connects the injected wallet found through EIP-6963", async () => {
    await page.goto(base);
    await page
      .getByRole("button", { name: "Connect Test Wallet" })
      .click()
      .catch(async (error: unknown) => {
        console.error("header:", await page.locator("header").innerHTML());
        throw error;
      });
    await page.getByTestId("account").waitFor();
    assert.match((await page.getByTestId("account").textContent()) ?? "", /^0xf39F/);
    await shoot("home");
    await axe("home");
  });

  it("buys 1 GB with a permit in one transaction and shows the credit", async () => {
    await page.getByRole("link", { name: "Buy bandwidth" }).first().click();
    await page.getByTestId("price").filter({ hasText: "1 X0T per GB" }).waitFor();
    assert.equal(await page.getByTestId("credit-left").textContent(), "0.000 GB");
    assert.match((await page.getByTestId("burn").textContent()) ?? "", /1% of every X0T transfer/);
    await page.getByLabel("Gigabytes").fill("1");
    assert.match((await page.getByTestId("cost").textContent()) ?? "", /Costs 1 X0T/);
    await page.getByRole("button", { name: "Sign permit and buy" }).click();
    await txStatus("Credit").filter({ hasText: "confirmed" }).waitFor();
    assert.match((await txStatus("Credit").textContent()) ?? "", /local chain: no public explorer/);
    await page.getByTestId("credit-left").filter({ hasText: "1.000 GB" }).waitFor();
    const client = createPublicClient({ transport: http(rpc) });
    const [bytesLeft] = await client.readContract({
      address: contracts.BandwidthCredit!,
      abi: bandwidthCreditAbi,
      functionName: "creditOf",
      args: [account.address],
    });
    assert.equal(bytesLeft, 1_000_000_000n);
  });

  it("authorises a client key generated in the browser", async () => {
    await page.getByRole("button", { name: "Generate a key in the browser" }).click();
    await page.getByTestId("generated-key").waitFor();
    await page.getByRole("button", { name: "Authorise key" }).click();
    await txStatus("Client keys").filter({ hasText: "confirmed" }).waitFor();
    await page.getByTestId("key-status").filter({ hasText: "Authorised for" }).waitFor();
    await shoot("buy");
    await axe("buy");
  });

  it("registers a node with a permit, stakes more, unbonds, and shows a refused withdraw in words", async () => {
    await page.getByRole("link", { name: "Run a relayer" }).click();
    await page.getByTestId("node-status").filter({ hasText: "Not registered" }).waitFor();
    await page.getByLabel("Endpoint (host:port)").fill("127.0.0.1:9001");
    await page.getByLabel("Region (ISO code)").fill("de");
    await page.getByLabel(/Keys hash/).fill(`0x${"ab".repeat(32)}`);
    await page.getByRole("button", { name: "Generate a signer key" }).click();
    await page.getByTestId("signer").waitFor();
    await page.getByRole("button", { name: "Sign permit and register" }).click();
    await page.getByTestId("node-status").filter({ hasText: "Registered, active" }).waitFor();
    assert.equal(await page.getByTestId("stake").textContent(), "10,000 X0T");
    assert.equal(await page.getByTestId("region").textContent(), "DE");

    await page.getByLabel("Add stake (X0T)").fill("500");
    await page.getByRole("button", { name: "Approve and stake" }).click();
    await page.getByTestId("stake").filter({ hasText: "10,500 X0T" }).waitFor();

    await page.getByLabel(/^Unbond/).fill("500");
    await page.getByRole("button", { name: "Unbond", exact: true }).click();
    await page.getByTestId("unbonding").filter({ hasText: "500 X0T, withdrawable from" }).waitFor();

    await page.getByRole("button", { name: /^Withdraw/ }).click();
    await txStatus("Stake").filter({ hasText: "failed" }).waitFor();
    assert.match(
      (await txStatus("Stake").textContent()) ?? "",
      /Still unbonding: withdrawable from .*\(StillUnbonding\)/,
    );

    const client = createPublicClient({ transport: http(rpc) });
    const node = await client.readContract({
      address: contracts.RelayerRegistry!,
      abi: relayerRegistryAbi,
      functionName: "getNode",
      args: [account.address],
    });
    assert.equal(node.stake, 10_000n * 10n ** 18n);
    assert.equal(node.unbonding, 500n * 10n ** 18n);
    await shoot("relayer");
    await axe("relayer");
  });

  it("locks credit for the registered relay and revokes the client key", async () => {
    await page.getByRole("link", { name: "Buy bandwidth" }).first().click();
    await page.getByTestId("credit-left").filter({ hasText: "1.000 GB" }).waitFor();
    await page.getByLabel("Relay (operator address)").fill(account.address);
    await page.getByLabel("GB", { exact: true }).fill("0.25");
    await page.getByRole("button", { name: "Lock", exact: true }).click();
    await txStatus("Lock credit for a relay").filter({ hasText: "confirmed" }).waitFor();
    await page.getByTestId("credit-left").filter({ hasText: "0.750 GB" }).waitFor();
    // Locking more than is left fails with the contract's error in words.
    await page.getByLabel("GB", { exact: true }).fill("5");
    await page.getByRole("button", { name: "Lock", exact: true }).click();
    await txStatus("Lock credit for a relay").filter({ hasText: "failed" }).waitFor();
    assert.match(
      (await txStatus("Lock credit for a relay").textContent()) ?? "",
      /Not enough free credit: 0\.75 GB left, 5 GB needed\. \(InsufficientCredit\)/,
    );
    // The key authorised earlier (the client-key section lost it on navigation: paste it back).
    const client = createPublicClient({ transport: http(rpc) });
    const logs = await client.getContractEvents({
      address: contracts.BandwidthCredit!,
      abi: bandwidthCreditAbi,
      eventName: "ClientKeyAuthorized",
      fromBlock: 0n,
    });
    const key = logs[0]!.args.key!;
    await page.getByLabel("Key to revoke").fill(key);
    await page.getByRole("button", { name: "Revoke key" }).click();
    await txStatus("Client keys").filter({ hasText: "confirmed" }).waitFor();
    const [, revokedAfter] = await client.readContract({
      address: contracts.BandwidthCredit!,
      abi: bandwidthCreditAbi,
      functionName: "clientKeys",
      args: [key],
    });
    assert.notEqual(revokedAfter, 2n ** 64n - 1n, "revoked: it signs for no later epoch");
  });

  it("lists the relayer, supply, burn and epoch on the network page", async () => {
    await page.getByRole("link", { name: "Network" }).click();
    await page.getByTestId("relayers").waitFor();
    const row = page.getByTestId("relayers").locator("tbody tr");
    assert.equal(await row.count(), 1);
    assert.match((await row.textContent()) ?? "", /DE127\.0\.0\.1:9001/);
    await page.getByTestId("supply").filter({ hasText: "X0T" }).waitFor();
    await page.getByTestId("burned").filter({ hasText: "X0T" }).waitFor();
    assert.match((await page.getByTestId("epoch").textContent()) ?? "", /^\d+ \(ends /);
    await shoot("network");
    await axe("network");
  });

  it("shows the sqrt weight, and a vote on a live proposal changes its tally", async () => {
    const rpcCall = async (method: string, params: unknown[]) => {
      const res = await fetch(rpc, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
      });
      const body = (await res.json()) as { error?: { message: string }; result?: unknown };
      if (body.error) throw new Error(`${method}: ${body.error.message}`);
      return body.result;
    };
    const advance = async (seconds: number) => {
      await rpcCall("evm_increaseTime", [seconds]);
      await rpcCall("evm_mine", []);
    };
    // Account 0 is a verified person: the attester attests it, and it registers itself with that.
    const client = createPublicClient({ transport: http(rpc) });
    const wallets = await connectionRef.viem.getWalletClients();
    const uid = await attest(connectionRef as unknown as Parameters<typeof attest>[0], wallets[10]!, account.address, {
      schema: easSchema,
    });
    const votersAbi = parseAbi(["function register(address source, bytes proof)"]);
    const asAccount = createWalletClient({ account, transport: http(rpc) });
    await client.waitForTransactionReceipt({
      hash: await asAccount.writeContract({
        chain: null,
        address: contracts.VoterRegistry!,
        abi: votersAbi,
        functionName: "register",
        args: [contracts.EASPersonhoodSource!, uid],
      }),
    });

    await page.getByRole("link", { name: "Governance" }).click();
    await page.getByTestId("registered").filter({ hasText: "yes" }).waitFor();
    await page.getByRole("button", { name: "Delegate your votes to yourself" }).click();
    await txStatus("Your voting weight").filter({ hasText: "confirmed" }).waitFor();
    await advance(2);

    // A proposal by account 0 (its weight is above the threshold), live after the voting delay.
    const governorAbi = parseAbi([
      "function propose(address[] targets, uint256[] values, bytes[] calldatas, string description) returns (uint256)",
    ]);
    const asUser = createWalletClient({ account, transport: http(rpc) });
    await client.waitForTransactionReceipt({
      hash: await asUser.writeContract({
        chain: null,
        address: contracts.QuadraticGovernor!,
        abi: governorAbi,
        functionName: "propose",
        args: [
          [contracts.X0T!],
          [0n],
          [encodeFunctionData({ abi: parseAbi(["function setBurnBps(uint16 bps)"]), args: [100] })],
          "Keep the transfer burn at 1%",
        ],
      }),
    });
    await advance(61);

    await page.reload();
    await page
      .getByTestId("weight")
      .filter({ hasText: /^9,999\.\d+$/ })
      .waitFor();
    const weight = (await page.getByTestId("weight").textContent())!;
    await page.getByTestId("proposal-state").filter({ hasText: "Active" }).waitFor();
    assert.equal(await page.getByTestId("tally").textContent(), "0 / 0 / 0");
    await page.getByRole("button", { name: "For", exact: true }).click();
    await txStatus("Proposals").filter({ hasText: "confirmed" }).waitFor();
    await page
      .getByTestId("tally")
      .filter({ hasText: `${weight} / 0 / 0` })
      .waitFor();
    await page.getByText("You voted").waitFor();
    await shoot("governance");
    await axe("governance");
  });

  it("votes on a Snapshot proposal by signature, and says so when the hub is unreachable", async () => {
    await page.getByTestId("snapshot-proposals").waitFor();
    assert.equal(await page.getByTestId("snapshot-scores").textContent(), "Yes 0 · No 0");
    await page.getByRole("button", { name: "Yes on Snapshot" }).click();
    await page.getByTestId("snapshot-status").filter({ hasText: "recorded by the hub" }).waitFor();
    await page.getByTestId("snapshot-scores").filter({ hasText: "Yes 1 · No 0" }).waitFor();
    assert.deepEqual(hub.votes, [{ address: account.address, choice: 1 }]);
    const closed = new Promise<void>((r) => hubServer!.close(() => r()));
    hub.server.closeAllConnections(); // the browser's keep-alive connections would hold close() open
    await closed;
    await page.reload();
    await page.getByTestId("snapshot-error").filter({ hasText: "is unreachable" }).waitFor();
    await shoot("governance-hub-down");
  });

  it("shows the treasury Safe: balance, council and threshold, the DAO's executor module", async () => {
    await page.getByRole("link", { name: "Treasury" }).click();
    await page.getByTestId("threshold").filter({ hasText: "2 of 3 owners" }).waitFor();
    assert.equal(await page.getByTestId("treasury-x0t").textContent(), "300,000,000 X0T");
    await page.getByText("the DAO's executor").waitFor();
    await page.getByTestId("transfers").waitFor();
    await shoot("treasury");
    await axe("treasury");
  });

  it("keeps first-load JS of every route within the budget", async () => {
    const sizes: Record<string, number> = {};
    for (const route of ["/", "/buy", "/relayer", "/network", "/governance", "/treasury"]) {
      const fresh = await browser.newContext();
      const p = await fresh.newPage();
      const js: Promise<number>[] = [];
      p.on("requestfinished", (request) => {
        if (request.resourceType() === "script") js.push(request.sizes().then((s) => s.responseBodySize));
      });
      await p.goto(base + route, { waitUntil: "networkidle" });
      sizes[route] = (await Promise.all(js)).reduce((a, b) => a + b, 0);
      await fresh.close();
    }
    const report = Object.fromEntries(Object.entries(sizes).map(([r, b]) => [r, `${(b / 1024).toFixed(1)} KiB`]));
    writeFileSync(join(OUT, "first-load-js.json"), JSON.stringify(report, null, 2) + "\n");
    console.log("first-load JS (transferred, gzip):", report);
    for (const [route, bytes] of Object.entries(sizes))
      assert.ok(bytes > 0 && bytes <= FIRST_LOAD_BUDGET, `${route}: ${bytes} B`);
  });
});

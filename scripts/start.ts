/**
 * `npm start`: the whole system on a local chain.
 *
 * 1. a Hardhat JSON-RPC node on 127.0.0.1 (chain 31337, the usual funded test accounts);
 * 2. the protocol, its governance (timelock, quadratic governor, voter registry) and the treasury
 *    Safe deployed by the same Ignition modules as on Base Sepolia, every admin role with the timelock;
 * 3. the addresses written to .x0t/deployment.json for the relayer and the web app;
 * 4. the money for the demo, the way it moves on a real network: the council pays each of three
 *    operators (test accounts 4–6) their stake from the treasury Safe (2 of 3 signatures); each
 *    registers a relay with its static keys and a node signer (`x0t register`); a payer (account 7)
 *    buys 1 GB of credit (`x0t buy`) and authorises a client key (`x0t key authorize`);
 * 5. three paid relays on loopback (the last an exit that, for this local demo only, may reach
 *    loopback targets), each started from its config file in .x0t/nodes/ (`x0t node start`),
 *    publishing its descriptor in .x0t/relays/, landing its payers' locks, settling its receipts
 *    after every epoch (one minute here) and claiming its rewards;
 * 6. the SOCKS5 entry on 127.0.0.1:10809 building 3-hop circuits through them and paying every hop
 *    in-band with the client key, and a demo HTTP server on loopback; the script fetches the demo
 *    page through the entry itself before it prints the curl line that works.
 *
 * 7. the web app (`next start` on 127.0.0.1, X0T_WEB_PORT, default 3000), built first if it never
 *    was (then in the background, its URL printed once it answers); X0T_WEB=off leaves it out.
 *
 * Ctrl-C stops everything. X0T_CHAIN_PORT (default 8545), X0T_SOCKS_PORT (10809) and
 * X0T_DEMO_PORT (18080) and X0T_METRICS_BASE_PORT (9464: the entry's /metrics, relay i on 9464 + i)
 * change the ports; X0T_STATE_DIR (default .x0t) where state goes;
 * X0T_LOG_LEVEL (default warn here) how much the relays and the entry log.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { network } from "hardhat";
import { SocksClient } from "socks";
import { type Address, createPublicClient, getAddress, type Hex, http, parseEther, parseUnits } from "viem";
import { authorizeClientKey, buyCredit, GB, registerRelayer } from "../relayer/src/chain/account.ts";
import { initCrypto } from "../relayer/src/crypto/keys.ts";
import { executeSafeTx, proposeTokenTransfer, signSafeTx } from "../relayer/src/governance/treasury.ts";
import { loadEvmKey } from "../relayer/src/node/evmkey.ts";
import { loadOrCreateKeys } from "../relayer/src/node/keyfile.ts";
import GovernanceModule from "../deploy/ignition/modules/Governance.js";
import TreasuryModule from "../deploy/ignition/modules/Treasury.js";

const port = Number(process.env.X0T_CHAIN_PORT ?? 8545);
if (!Number.isInteger(port) || port <= 0 || port > 65_535) {
  throw new Error(`X0T_CHAIN_PORT must be a TCP port, got "${process.env.X0T_CHAIN_PORT}"`);
}
const rpcUrl = `http://127.0.0.1:${port}`;
function portFromEnv(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0 || value > 65_535)
    throw new Error(`${name} must be a TCP port, got "${process.env[name]}"`);
  return value;
}
const socksPort = portFromEnv("X0T_SOCKS_PORT", 10809);
const demoPort = portFromEnv("X0T_DEMO_PORT", 18080);
const webPort = portFromEnv("X0T_WEB_PORT", 3000);
/** Prometheus /metrics: the entry on this port, relay i on port + i (deploy/prometheus/). */
const metricsBase = portFromEnv("X0T_METRICS_BASE_PORT", 9464);
const RELAYS = 3;
const stateDir = resolve(process.env.X0T_STATE_DIR ?? ".x0t");
const children: ChildProcess[] = [];

function stopAll(code: number): never {
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  process.exit(code);
}
process.on("SIGINT", () => stopAll(0));
process.on("SIGTERM", () => stopAll(0));

async function waitForChain(timeoutMs: number): Promise<number> {
  const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await client.getChainId();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the local chain did not answer on ${rpcUrl}`, { cause: error });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function main() {
  // hardhat's "exports" hide its CLI file; find it from the package's main entry (dist/src/index.js).
  const hardhatCli = join(dirname(createRequire(import.meta.url).resolve("hardhat")), "cli.js");
  const chain = spawn(process.execPath, [hardhatCli, "node", "--hostname", "127.0.0.1", "--port", String(port)], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(chain);
  chain.on("exit", (code) => {
    console.error(`local chain exited (code ${code}); stopping`);
    stopAll(code ?? 1);
  });
  const chainId = await waitForChain(30_000);
  // Contracts read time from the latest block, and an idle automining chain makes none: without
  // blocks the one-minute epochs would never end. Base Sepolia makes a block every 2 s; so does this.
  const ticker = setInterval(() => {
    void fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "evm_mine", params: [] }),
    }).catch(() => {});
  }, 2_000);
  ticker.unref();

  // The chain is new on every start: forget Ignition's journal of the previous one.
  await rm(join("deploy", "ignition", "deployments", `chain-${chainId}`), { recursive: true, force: true });
  const connection = await network.create({ network: "localhost", override: { url: rpcUrl } });
  // The council of the local treasury Safe: test accounts 1–3, any 2 of them sign.
  const council = (await connection.viem.getWalletClients()).slice(1, 4).map((w) => w.account.address);
  // The Governance deployment shares the journal, so it repeats the Treasury's parameters.
  const treasuryParameters = { council, threshold: 2, minDelay: 120 };
  const treasury = (await connection.ignition.deploy(TreasuryModule, {
    displayUi: false,
    parameters: { Treasury: treasuryParameters },
  })) as unknown as Record<"safe" | "timelock" | "guard" | "executor", { address: string }>;
  const { token, registry, credit, rewards, governor, voters } = await connection.ignition.deploy(GovernanceModule, {
    displayUi: false,
    parameters: {
      Treasury: treasuryParameters,
      // One-minute epochs and k = 1 make the local demo move; Base Sepolia uses the defaults.
      Protocol: { epochLength: 60, minAttestations: 1, unbondingDelay: 600, treasury: treasury.safe.address },
      // Two-minute voting and timelock delays for the demo.
      Governance: {
        timelock: treasury.timelock.address,
        safe: treasury.safe.address,
        guard: treasury.guard.address,
        votingDelay: 60,
        votingPeriod: 120,
      },
    },
  });
  const deployment = {
    chainId,
    rpcUrl,
    contracts: {
      X0T: token.address,
      RelayerRegistry: registry.address,
      BandwidthCredit: credit.address,
      EpochRewards: rewards.address,
      QuadraticGovernor: governor.address,
      VoterRegistry: voters.address,
      TimelockController: treasury.timelock.address,
      TreasurySafe: treasury.safe.address,
      CouncilGuard: treasury.guard.address,
      TreasuryExecutor: treasury.executor.address,
    },
    council,
  };
  await mkdir(stateDir, { recursive: true });
  await writeFile(join(stateDir, "deployment.json"), JSON.stringify(deployment, null, 2) + "\n");

  console.log(`x0tta6bl4 is running on a local chain (id ${chainId}) at ${rpcUrl}`);
  for (const [name, address] of Object.entries(deployment.contracts)) console.log(`  ${name.padEnd(16)} ${address}`);
  console.log(`deployment written to ${join(stateDir, "deployment.json")}`);
  const demo = await startDemoServer();
  await initCrypto();
  const relays = await fundAndRegister(connection, deployment, treasury.safe.address as Address);
  await startDataPlane(relays);
  const body = await fetchThroughEntry(60_000);
  if (!body.includes(DEMO_TEXT)) throw new Error("the demo page came back wrong through the entry");
  console.log(
    `SOCKS5 entry on 127.0.0.1:${socksPort}, ${RELAYS} relays on loopback (3-hop circuits), demo site on 127.0.0.1:${demoPort}`,
  );
  console.log(`try:  curl -x socks5h://127.0.0.1:${socksPort} http://127.0.0.1:${demoPort}/`);
  console.log(
    `metrics: http://127.0.0.1:${metricsBase}/metrics (entry), ports ${metricsBase + 1}-${metricsBase + RELAYS} (relays); ` +
      "Prometheus scrape config and Grafana dashboard in deploy/prometheus/ and deploy/grafana/",
  );
  const web = process.env.X0T_WEB === "off" ? undefined : startWeb(join(stateDir, "deployment.json"));
  // A built app answers within seconds; a first build goes on in the background after "ready".
  const webUp = await Promise.race([web, new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
  if (webUp) console.log(`web app on ${webUp}`);
  else if (web) {
    console.log(`web app: building it (first start only); its URL follows when it answers`);
    void web.then((url) => url && console.log(`web app on ${url}`));
  }
  console.log("ready. Ctrl-C stops everything.");
  process.on("exit", () => demo.close());
}

/**
 * The web app beside the network: `next build` if web/ was never built, then `next start` on
 * loopback with this deployment. The network does not depend on it: a failure is a warning.
 */
async function startWeb(deploymentFile: string): Promise<string | undefined> {
  const webDir = resolve("web");
  const url = `http://127.0.0.1:${webPort}`;
  const env = { ...process.env, X0T_DEPLOYMENT: deploymentFile, NEXT_TELEMETRY_DISABLED: "1" };
  try {
    const nextCli = createRequire(join(webDir, "package.json")).resolve("next/dist/bin/next");
    const run = (args: string[], keep: boolean) => {
      const child = spawn(process.execPath, [nextCli, ...args], {
        cwd: webDir,
        env,
        stdio: ["ignore", "ignore", "inherit"],
      });
      children.push(child);
      if (keep)
        child.on("exit", (code, signal) => {
          if (signal !== "SIGTERM") console.error(`web app exited (code ${code}); the network keeps running`);
        });
      return child;
    };
    if (!existsSync(join(webDir, ".next", "BUILD_ID"))) {
      const code = await new Promise<number | null>((r) => run(["build"], false).on("exit", (c) => r(c)));
      if (code !== 0) throw new Error(`next build failed (code ${code})`);
    }
    const server = run(["start", "--hostname", "127.0.0.1", "--port", String(webPort)], true);
    const deadline = Date.now() + 60_000;
    while (server.exitCode === null && Date.now() < deadline) {
      if (
        await fetch(url).then(
          (r) => r.ok,
          () => false,
        )
      )
        return url;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`nothing answered on ${url} (X0T_WEB_PORT changes the port)`);
  } catch (error) {
    console.error(`web app not started: ${error instanceof Error ? error.message : error}`);
    return undefined;
  }
}

const DEMO_TEXT = "hello from x0tta6bl4: this page came to you through a 3-hop post-quantum circuit";

function startDemoServer(): Promise<{ close: () => void }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    res.end(`${DEMO_TEXT}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (error) =>
      reject(new Error(`demo server: port ${demoPort} is taken (set X0T_DEMO_PORT)`, { cause: error })),
    );
    server.listen(demoPort, "127.0.0.1", () => resolve({ close: () => server.close() }));
  });
}

interface LocalRelay {
  name: string;
  port: number;
  operator: Address;
  keys: string;
  signerKey: string;
}

const keyDir = join(stateDir, "keys");
/** Stake each operator is paid by the council (1% of a payout is burned; staking itself is not). */
const STAKE = 10_000n * 10n ** 18n;
const PAYOUT = 10_200n * 10n ** 18n;

/** A TCP port free on loopback now (the relays' endpoints are registered before they listen). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/**
 * The demo's money, moved the way it moves on a real network: council payouts from the treasury
 * Safe to three operators, who register their relays; a payer who buys 1 GB and authorises the
 * client key the entry pays with.
 */
async function fundAndRegister(
  connection: Awaited<ReturnType<typeof network.create>>,
  deployment: { contracts: Record<string, string> },
  safe: Address,
): Promise<LocalRelay[]> {
  const publicClient = (await connection.viem.getPublicClient()) as never;
  const wallets = await connection.viem.getWalletClients();
  const contracts = {
    X0T: deployment.contracts.X0T as Address,
    RelayerRegistry: deployment.contracts.RelayerRegistry as Address,
    BandwidthCredit: deployment.contracts.BandwidthCredit as Address,
    EpochRewards: deployment.contracts.EpochRewards as Address,
  };
  const clientsOf = (i: number) => ({ public: publicClient, wallet: wallets[i] as never, contracts });
  await mkdir(keyDir, { recursive: true, mode: 0o700 });
  const [deployer, council1, council2] = [wallets[0]!, wallets[1]!, wallets[2]!];
  const payer = wallets[7]!;
  const payouts: [Address, bigint][] = [
    ...[4, 5, 6].map((i) => [wallets[i]!.account.address, PAYOUT] as [Address, bigint]),
    [payer.account.address, 10n * 10n ** 18n],
  ];
  for (const [to, amount] of payouts) {
    let file = await proposeTokenTransfer(publicClient, {
      safe,
      token: contracts.X0T,
      to,
      amount,
      description: `local demo: fund ${to}`,
    });
    // Council members sign on their own machines (x0t treasury sign); here their node accounts sign.
    for (const member of [council1, council2])
      file = await signSafeTx(publicClient, file, {
        ...member.account,
        signTypedData: (typed: never) => member.signTypedData(typed),
      } as never);
    const hash = await executeSafeTx(publicClient, council1 as never, file);
    await (
      publicClient as { waitForTransactionReceipt: (a: { hash: Hex }) => Promise<unknown> }
    ).waitForTransactionReceipt({ hash });
  }
  step("council paid 3 operators their stake and the payer 10 X0T from the treasury Safe");
  const relays: LocalRelay[] = [];
  for (let i = 1; i <= RELAYS; i++) {
    const wallet = 3 + i;
    const keys = join(keyDir, `relay-${i}.key`);
    const signerKey = join(keyDir, `relay-${i}.signer`);
    await rm(keys, { force: true });
    await rm(signerKey, { force: true });
    const { keys: staticKeys } = loadOrCreateKeys(keys);
    const signer = loadEvmKey(signerKey, "signer", { create: true });
    const port = await freeLoopbackPort();
    await registerRelayer(clientsOf(wallet), {
      endpoint: `127.0.0.1:${port}`,
      region: ["DE", "NL", "FR"][i - 1]!,
      keysHash: `0x${staticKeys.keysHash.toString("hex")}`,
      signer,
      amount: STAKE,
    });
    // The node signer pays the gas of submissions, lock landings and claims.
    await deployer.sendTransaction({ to: signer.address, value: parseEther("10") });
    relays.push({ name: `relay-${i}`, port, operator: getAddress(wallets[wallet]!.account.address), keys, signerKey });
  }
  step(`${RELAYS} relays registered with 10,000 X0T stake each (accounts 4-6), node signers funded`);
  const clientKey = join(keyDir, "client.key");
  await rm(clientKey, { force: true });
  const key = loadEvmKey(clientKey, "client key", { create: true });
  await buyCredit(clientsOf(7), parseUnits("1", 18)); // 1 X0T = 1 GB
  await authorizeClientKey(clientsOf(7), key, 1n * GB);
  step(`payer ${payer.account.address} bought 1 GB and authorised client key ${key.address}`);
  return relays;
}

function step(message: string) {
  console.log(`  - ${message}`);
}

/** The relays and the entry run from config files, as `x0t node start` runs them on any machine. */
async function startDataPlane(relays: LocalRelay[]): Promise<void> {
  const cli = resolve("relayer/src/cli.ts");
  const relayDir = join(stateDir, "relays");
  const nodeDir = join(stateDir, "nodes");
  const dataDir = join(stateDir, "data");
  for (const dir of [relayDir, nodeDir, dataDir]) await rm(dir, { recursive: true, force: true });
  await mkdir(nodeDir, { recursive: true });
  await mkdir(dataDir, { recursive: true });
  const deploymentFile = join(stateDir, "deployment.json");
  const env = { ...process.env, X0T_LOG_LEVEL: process.env.X0T_LOG_LEVEL ?? "warn" };
  const spawnNode = (args: string[]) => {
    // node:sqlite still prints an ExperimentalWarning on Node 22: nothing a user can act on.
    const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", cli, ...args], {
      stdio: ["ignore", "inherit", "inherit"],
      env,
    });
    children.push(child);
    child.on("exit", (code, signal) => {
      if (signal === "SIGTERM") return;
      console.error(`${args[0]} exited (code ${code}); stopping`);
      stopAll(code ?? 1);
    });
  };
  for (const [i, relay] of relays.entries()) {
    const exit = i === relays.length - 1;
    const config = {
      role: exit ? "exit" : "relay",
      chain: { deployment: deploymentFile },
      metrics: `127.0.0.1:${metricsBase + i + 1}`,
      relay: {
        listen: `127.0.0.1:${relay.port}`,
        keys: relay.keys,
        name: relay.name,
        region: ["DE", "NL", "FR"][i],
        descriptorOut: join(relayDir, `${relay.name}.json`),
        payments: {
          operator: relay.operator,
          signerKey: relay.signerKey,
          accounting: join(dataDir, `${relay.name}.db`),
          settleEverySeconds: 5,
          claimAboveX0T: "0",
        },
      },
      ...(exit ? { exit: { allowLoopbackTargets: true } } : {}),
    };
    const file = join(nodeDir, `${relay.name}.json`);
    await writeFile(file, JSON.stringify(config, null, 2) + "\n");
    spawnNode(["node", "start", "--config", file]);
  }
  const deadline = Date.now() + 30_000;
  for (const relay of relays) {
    while (!existsSync(join(relayDir, `${relay.name}.json`))) {
      if (Date.now() > deadline) throw new Error(`${relay.name} did not publish its descriptor within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const entry = {
    role: "entry",
    chain: { deployment: deploymentFile },
    metrics: `127.0.0.1:${metricsBase}`,
    entry: {
      socks: `127.0.0.1:${socksPort}`,
      directory: relayDir,
      hops: 3,
      payer: { clientKey: join(keyDir, "client.key"), state: join(dataDir, "payer.db"), lockMiB: 64, lockEpochs: 2 },
    },
  };
  await writeFile(join(nodeDir, "entry.json"), JSON.stringify(entry, null, 2) + "\n");
  spawnNode(["node", "start", "--config", join(nodeDir, "entry.json")]);
}

/** GET the demo page through the SOCKS5 entry, retrying while the entry comes up. */
async function fetchThroughEntry(timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { socket } = await SocksClient.createConnection({
        proxy: { host: "127.0.0.1", port: socksPort, type: 5 },
        command: "connect",
        destination: { host: "127.0.0.1", port: demoPort },
        timeout: 10_000,
      });
      socket.write(`GET / HTTP/1.0\r\nHost: 127.0.0.1:${demoPort}\r\n\r\n`);
      const chunks: Buffer[] = [];
      for await (const chunk of socket) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString();
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`no answer through the SOCKS5 entry on 127.0.0.1:${socksPort}`, { cause: error });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  if (error instanceof Error && error.cause) console.error("cause:", error.cause);
  stopAll(1);
});

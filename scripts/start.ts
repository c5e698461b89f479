/**
 * `npm start`: the whole system on this machine, every node a process of its own.
 *
 *  1. the ports it needs are free (processes a crashed run left behind, recorded in .x0t/pids.json,
 *     are stopped first; the previous run's logs and accounting move to .x0t/previous/);
 *  2. the contracts compiled (solc's output goes to .x0t/logs/build.log) while the chain boots;
 *  3. a Hardhat JSON-RPC chain on 127.0.0.1 (chain 31337, the usual funded test accounts);
 *  4. the protocol, its governance and the treasury Safe deployed by the same Ignition modules as on
 *     Base Sepolia, every admin role with the timelock; addresses in .x0t/deployment.json;
 *  5. the council pays five operators their stake from the treasury Safe (2 of 3 signatures), and
 *     the payer its X0T;
 *  6. each operator registers its relay with its static keys and a node signer (`x0t register`);
 *  7. the payer buys 1 GB of credit and authorises the entry's client key;
 *  8. five paid relays in four regions, two of them exits (start/nodes.ts), each
 *     `x0t node start --config .x0t/nodes/relay-i.json`: each lands its payers' locks, settles its
 *     receipts after every epoch (one minute here) and claims its rewards;
 *  9. the SOCKS5 entry on 127.0.0.1:10809 building 3-hop circuits through them and paying every hop
 *     in-band; ready once the demo page came back through it;
 * 10. every node's Prometheus endpoint answers (entry 9464, relay i on 9464 + i);
 * 11. the web app (`next start` on 127.0.0.1:3000), built in the background on the first start.
 *
 * Each step prints a numbered line with its duration; children write to .x0t/logs/<name>.log
 * (X0T_VERBOSE=1 prints those here too). A part that does not come up in time is named with the
 * end of its log, everything is stopped and the exit code is 1. Ctrl-C (or SIGTERM) stops every
 * child's process group, entry first and chain last; a second Ctrl-C kills them at once.
 *
 * Environment: X0T_CHAIN_PORT (8545), X0T_SOCKS_PORT (10809), X0T_DEMO_PORT (18080), X0T_WEB_PORT
 * (3000), X0T_METRICS_BASE_PORT (9464), X0T_WEB=off, X0T_STATE_DIR (.x0t), X0T_LOG_LEVEL (info:
 * what the nodes write to their logs), X0T_VERBOSE=1.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import hre from "hardhat";
import { DEMO_TEXT, fetchThroughEntry, freeLoopbackPort, startDemoServer } from "./start/demo.ts";
import { describePath, entryConfig, PAYER_ACCOUNT, RELAYS, relayConfig } from "./start/nodes.ts";
import { busyPorts, describeBusy, type WantedPort } from "./start/ports.ts";
import { explain, processTable, Progress, seconds, StepError } from "./start/progress.ts";
import type { RelaySpec } from "./start/protocol.ts";
import { accepts, answers, type Check, describeExit, exitedError, logDetails, waitReady } from "./start/readiness.ts";
import {
  type ExitInfo,
  mirrorLog,
  type Part,
  type PartInfo,
  shown,
  stopLeftovers,
  Supervisor,
  tailLog,
} from "./start/supervisor.ts";
import { startWeb } from "./start/web.ts";

function portFromEnv(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0 || value > 65_535)
    throw new Error(`${name} must be a TCP port, got "${process.env[name]}"`);
  return value;
}
const chainPort = portFromEnv("X0T_CHAIN_PORT", 8545);
const socksPort = portFromEnv("X0T_SOCKS_PORT", 10809);
const demoPort = portFromEnv("X0T_DEMO_PORT", 18080);
const webPort = portFromEnv("X0T_WEB_PORT", 3000);
/** Prometheus /metrics: the entry on this port, relay i on port + i (deploy/prometheus/). */
const metricsBase = portFromEnv("X0T_METRICS_BASE_PORT", 9464);
const webOn = process.env.X0T_WEB !== "off";
const verbose = ["1", "true", "yes"].includes(process.env.X0T_VERBOSE ?? "");
const rpcUrl = `http://127.0.0.1:${chainPort}`;
/** When `npm start` began (scripts/bootstrap.mjs sets it), else when this process did. */
const launchedAt = Number(process.env.X0T_LAUNCHED_AT) || performance.timeOrigin;

const stateDir = resolve(process.env.X0T_STATE_DIR ?? ".x0t");
const logDir = join(stateDir, "logs");
const keyDir = join(stateDir, "keys");
const nodeDir = join(stateDir, "nodes");
const relayDir = join(stateDir, "relays");
/** Where the relays write their descriptors until all are up; then it becomes relayDir at once. */
const stagingDir = join(stateDir, "relays.new");
const dataDir = join(stateDir, "data");
const pidFile = join(stateDir, "pids.json");
const deploymentFile = join(stateDir, "deployment.json");

const READY_TIMEOUT_MS = 45_000;
const ENTRY_TIMEOUT_MS = 60_000;

const progress = new Progress(11);
let supervisor: Supervisor | undefined;
let demo: { close(): void } | undefined;
let ending = false;
/** Web parts whose exit a step reports (see start/web.ts); onChildExit leaves them alone. */
const webAwaited = new Set<string>();

/** Says what failed and why, stops every child, exits 1. */
async function fail(error: unknown): Promise<never> {
  if (ending) return new Promise<never>(() => {});
  ending = true;
  progress.silence();
  const { part, message, details } = error instanceof StepError ? error : { part: "npm start", ...explain(error) };
  progress.say(`\n✗ ${part}: ${message}`);
  for (const line of details) progress.say(`  ${line}`);
  const n = supervisor?.running.length ?? 0;
  if (n > 0) progress.say(`stopping every process it started (${n})...`);
  await supervisor?.stopAll();
  demo?.close();
  progress.say(supervisor ? `stopped. Logs: ${shown(logDir)}/` : "nothing was started.");
  process.exit(1);
}

/** Ctrl-C / SIGTERM: stop every child in order; a second signal kills them all at once. */
async function stop(signal: string): Promise<void> {
  if (ending) {
    supervisor?.killAll();
    process.exit(130);
  }
  ending = true;
  progress.silence();
  const started = performance.now();
  const n = supervisor?.running.length ?? 0;
  progress.say(`\n${signal}: stopping ${n} processes (entry, web, relays, chain); again to kill them at once`);
  await supervisor?.stopAll();
  demo?.close();
  progress.say(`stopped (${seconds(performance.now() - started)})`);
  process.exit(0);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));

function onChildExit(part: Part, exit: ExitInfo): void {
  if (part.role !== "web") return void fail(exitedError(part, exit, "(every part is needed: everything stops)"));
  if (webAwaited.has(part.name)) return;
  progress.line(`! web app ${describeExit(exit)}; the network keeps running. Last lines of ${shown(part.log)}:`);
  for (const line of tailLog(part.log, 5)) progress.line(`    ${line}`);
}

function spawnPart(info: Omit<PartInfo, "log">, command: string, args: string[], env: Record<string, string> = {}) {
  const log = join(logDir, `${info.name}.log`);
  const part = supervisor!.spawn({ ...info, log }, command, args, {
    cwd: info.role === "web" ? resolve("web") : undefined,
    env: { ...process.env, ...env },
  });
  if (verbose) mirrorLog(log, info.name, (line) => progress.line(line));
  return part;
}

/** Step 1: stop what a crashed run left, set its logs and accounting aside, check the ports. */
async function prepare(): Promise<string[]> {
  const notes: string[] = [];
  mkdirSync(stateDir, { recursive: true });
  const leftovers = await stopLeftovers(pidFile);
  if (leftovers.running)
    throw new StepError(
      "npm start",
      `another npm start is running on ${shown(stateDir)} (pid ${leftovers.running.pid})`,
      [`stop it first (Ctrl-C in its terminal, or kill ${leftovers.running.pid}), or give this one X0T_STATE_DIR`],
    );
  if (leftovers.stopped.length > 0)
    notes.push(
      `stopped ${leftovers.stopped.length} processes left by a run that did not stop cleanly: ` +
        leftovers.stopped.map((p) => `${p.name} (pid ${p.pid})`).join(", "),
    );
  const wanted: WantedPort[] = [
    { port: chainPort, what: "local chain", variable: "X0T_CHAIN_PORT" },
    { port: socksPort, what: "SOCKS5 entry", variable: "X0T_SOCKS_PORT" },
    { port: demoPort, what: "demo web page", variable: "X0T_DEMO_PORT" },
    ...(webOn ? [{ port: webPort, what: "web app", variable: "X0T_WEB_PORT (or X0T_WEB=off)" }] : []),
    { port: metricsBase, what: "entry's metrics", variable: "X0T_METRICS_BASE_PORT" },
    ...RELAYS.map((r, i) => ({
      port: metricsBase + i + 1,
      what: `${r.name}'s metrics`,
      variable: "X0T_METRICS_BASE_PORT",
    })),
  ];
  const busy = await busyPorts(wanted);
  if (busy.length > 0)
    throw new StepError(
      busy[0]!.what,
      describeBusy(busy[0]!, true),
      busy.slice(1).map((b) => describeBusy(b)),
    );
  // Accounting (SQLite) and logs are of a chain that is gone: keep the last run's aside, start empty.
  const previous = join(stateDir, "previous");
  const moved = ["logs", "data"].filter((d) => existsSync(join(stateDir, d)));
  if (moved.length > 0) {
    rmSync(previous, { recursive: true, force: true });
    mkdirSync(previous);
    for (const d of moved) renameSync(join(stateDir, d), join(previous, d));
    notes.push(`the previous run's ${moved.join(" and ")} (of a chain that is gone) moved to ${shown(previous)}/`);
  }
  for (const dir of [nodeDir, relayDir, stagingDir]) rmSync(dir, { recursive: true, force: true });
  for (const dir of [logDir, dataDir, nodeDir, relayDir, stagingDir]) mkdirSync(dir, { recursive: true });
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });

  return notes;
}

/** eth_chainId on the local chain, or undefined while it does not answer. */
async function chainIdNow(): Promise<number | undefined> {
  try {
    const response = await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(2_000),
    });
    return Number(((await response.json()) as { result: string }).result);
  } catch {
    return undefined;
  }
}

async function main() {
  // viem, the relayer and Ignition's modules take seconds to load on a busy machine: they load
  // while the first lines are out and step 1 runs.
  const loading = Promise.all([import("./start/protocol.ts"), import("../relayer/src/crypto/keys.ts")]);
  loading.catch(() => {}); // awaited in step 2, which reports the error
  progress.line(
    `x0tta6bl4: the whole network on this machine. Logs: ${shown(logDir)}/` +
      (verbose ? " (printed here too: X0T_VERBOSE)" : " (X0T_VERBOSE=1 prints them here too)"),
  );
  const notes = await progress.step(
    "checking ports and what the last run left",
    prepare,
    () =>
      `ports free: chain ${chainPort}, SOCKS5 ${socksPort}, demo ${demoPort}${webOn ? `, web ${webPort}` : ""}, ` +
      `metrics ${metricsBase}-${metricsBase + RELAYS.length}`,
  );
  progress.logTo(join(logDir, "start.log"));
  supervisor = new Supervisor(pidFile, onChildExit);
  for (const note of notes) progress.line(`        ${note}`);

  // The chain boots while the contracts compile.
  const hardhatCli = join(dirname(createRequire(import.meta.url).resolve("hardhat")), "cli.js");
  const chain = spawnPart({ name: "chain", role: "chain", listen: `127.0.0.1:${chainPort}` }, process.execPath, [
    hardhatCli,
    "node",
    "--hostname",
    "127.0.0.1",
    "--port",
    String(chainPort),
  ]);
  const [{ compileContracts, deployAll, payOperators, preparePayer, registerRelays, writeDeployment }, crypto] =
    await loading;
  const buildLog = join(logDir, "build.log");
  await progress.step(
    "compiling the contracts",
    () =>
      compileContracts(hre, buildLog, verbose).catch((error: Error) => {
        throw new StepError("contracts", `did not compile: ${error.message.split("\n")[0]}`, logDetails(buildLog));
      }),
    () => `contracts compiled (solc's output: ${shown(buildLog)})`,
  );
  const chainAnswers = async () => (await chainIdNow()) !== undefined;
  const chainId = await progress.step(
    `waiting for the local chain on ${rpcUrl}`,
    async () => {
      await waitReady(chain, [{ what: `no JSON-RPC answer on ${rpcUrl}`, ok: chainAnswers }], READY_TIMEOUT_MS);
      return (await chainIdNow())!;
    },
    (id) => `local chain on ${rpcUrl} (chain id ${id}), a block every 2 s`,
  );
  // Contracts read time from the latest block, and an idle automining chain makes none: without
  // blocks the one-minute epochs would never end. Base Sepolia makes a block every 2 s; so does this.
  setInterval(() => {
    void fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "evm_mine", params: [] }),
    }).catch(() => {});
  }, 2_000).unref();

  const { connection, deployment } = await progress.step(
    "deploying the protocol, governance and treasury Safe (Ignition)",
    async () => {
      const connection = await hre.network.create({ network: "localhost", override: { url: rpcUrl } });
      const deployment = await deployAll(connection, chainId, rpcUrl);
      await writeDeployment(deploymentFile, deployment);
      return { connection, deployment };
    },
    () => `contracts deployed: protocol, governance, treasury Safe; addresses in ${shown(deploymentFile)}`,
  );
  const accounts = RELAYS.map((r) => r.account);
  await progress.step(
    "the council pays the operators from the treasury Safe",
    () => payOperators(connection, deployment, accounts, PAYER_ACCOUNT),
    () =>
      `council paid ${RELAYS.length} operators (accounts ${accounts.join(", ")}) their stake and the payer ` +
      `(account ${PAYER_ACCOUNT}) from the treasury Safe, 2 of 3 signatures each`,
  );
  await crypto.initCrypto();
  const specs: RelaySpec[] = [];
  const taken = new Set([
    chainPort,
    socksPort,
    demoPort,
    webPort,
    metricsBase,
    ...RELAYS.map((_, i) => metricsBase + i + 1),
  ]);
  const relayPort = async () => {
    // The kernel may hand the same free port out twice in a row: one per relay, none of the fixed ones.
    for (;;) {
      const port = await freeLoopbackPort();
      if (!taken.has(port)) return (taken.add(port), port);
    }
  };
  for (const r of RELAYS)
    specs.push({
      name: r.name,
      region: r.region,
      account: r.account,
      port: await relayPort(),
      keys: join(keyDir, `${r.name}.key`),
      signerKey: join(keyDir, `${r.name}.signer`),
    });
  const operators = await progress.step(
    "registering the relays",
    () => registerRelays(connection, deployment, specs),
    () => `${RELAYS.length} relays registered with 10,000 X0T stake each, node signers funded with ETH for gas`,
  );
  const clientKey = join(keyDir, "client.key");
  await progress.step(
    "the payer buys credit",
    () => preparePayer(connection, deployment, PAYER_ACCOUNT, clientKey),
    (p) => `payer ${p.payer} bought 1 GB and authorised the entry's client key ${p.clientKey}`,
  );

  const cli = resolve("relayer/src/cli.ts");
  const nodeEnv = { X0T_LOG_LEVEL: process.env.X0T_LOG_LEVEL ?? "info" };
  const startNode = async (info: Omit<PartInfo, "log">, config: object) => {
    const file = join(nodeDir, `${info.name}.json`);
    await writeFile(file, JSON.stringify(config, null, 2) + "\n");
    const args = ["--disable-warning=ExperimentalWarning", cli, "node", "start", "--config", file];
    return spawnPart(info, process.execPath, args, nodeEnv);
  };
  /** Five relays, and the entry beside them (the entry is waited for in step 9). */
  const spawnNodes = async () => {
    const relays = await Promise.all(
      RELAYS.map((r, i) => {
        const s = specs[i]!;
        const metricsPort = metricsBase + i + 1;
        const config = relayConfig(r, {
          deployment: deploymentFile,
          port: s.port,
          metricsPort,
          keys: s.keys,
          signerKey: s.signerKey,
          operator: operators[i]!,
          descriptor: join(stagingDir, `${r.name}.json`),
          accounting: join(dataDir, `${r.name}.db`),
          peers: relayDir,
        });
        const info = { name: r.name, role: r.role, region: r.region, listen: `127.0.0.1:${s.port}` };
        return startNode({ ...info, metrics: `http://127.0.0.1:${metricsPort}/metrics` }, config);
      }),
    );
    // The entry boots beside the relays. Its directory stays empty until every relay is up, then
    // receives all five descriptors at once (a rename): a circuit built from the first relays up
    // could not keep three regions apart, and would carry the entry's streams for ten minutes.
    const entry = await startNode(
      {
        name: "entry",
        role: "entry",
        listen: `127.0.0.1:${socksPort}`,
        metrics: `http://127.0.0.1:${metricsBase}/metrics`,
      },
      entryConfig({
        deployment: deploymentFile,
        socksPort,
        metricsPort: metricsBase,
        directory: relayDir,
        clientKey,
        payerState: join(dataDir, "payer.db"),
        knowledge: join(dataDir, "entry-mesh.db"),
      }),
    );
    return { relays, entry };
  };
  const relaysStarted = performance.now();
  const { relays, entry } = await progress.step(
    `starting ${RELAYS.length} relays`,
    async () => {
      const nodes = await spawnNodes();
      await Promise.all(
        nodes.relays.map(async (part) => {
          const descriptor = join(stagingDir, `${part.name}.json`);
          const port = Number(part.listen!.split(":")[1]);
          await waitReady(
            part,
            [
              { what: `no descriptor in ${shown(descriptor)}`, ok: async () => existsSync(descriptor) },
              { what: `nothing accepts connections on ${part.listen}`, ok: () => accepts(port) },
              { what: `no answer from ${part.metrics}`, ok: () => answers(part.metrics!, "x0t_node_info") },
            ],
            READY_TIMEOUT_MS,
          );
          progress.sub(
            `${part.name}  ${part.role.padEnd(5)}  ${part.region}  pid ${part.pid}  registered, listening on ${part.listen}`,
            relaysStarted,
          );
        }),
      );
      return nodes;
    },
    ({ relays }) => {
      const exits = relays.filter((p) => p.role === "exit");
      return (
        `${relays.length} relays up, ${exits.length} of them exits (${exits.map((p) => `${p.name} ${p.region}`).join(", ")}); ` +
        `regions ${[...new Set(relays.map((p) => p.region))].join(" ")}`
      );
    },
  );

  renameSync(stagingDir, relayDir); // relayDir is empty: rename(2) replaces it in one step
  demo = await startDemoServer(demoPort);
  let lastError = "";
  const pageThrough: Check = {
    what: () => `no page came back through the entry (${lastError || "no answer"})`,
    ok: () =>
      fetchThroughEntry(socksPort, demoPort).then(
        (body) => body.includes(DEMO_TEXT),
        (error: Error) => ((lastError = error.message), false),
      ),
  };
  await progress.step(
    `waiting for the SOCKS5 entry on ${entry.listen} and a page through 3 hops`,
    () =>
      waitReady(
        entry,
        [{ what: `nothing accepts connections on ${entry.listen}`, ok: () => accepts(socksPort) }, pageThrough],
        ENTRY_TIMEOUT_MS,
      ),
    () => `SOCKS5 entry on ${entry.listen}: a page came back through ${firstPath(entry) ?? "3 hops"}`,
  );
  await progress.step(
    "asking every node's /metrics",
    async () => {
      const metricsAnswer = {
        what: `no answer from ${entry.metrics}`,
        ok: () => answers(entry.metrics!, "x0t_node_info"),
      };
      await waitReady(entry, [metricsAnswer], READY_TIMEOUT_MS);
      for (const r of relays)
        if (!(await answers(r.metrics!, "x0t_node_info")))
          throw new StepError(r.name, `its metrics stopped answering on ${r.metrics}`, logDetails(r.log));
    },
    () =>
      `metrics: http://127.0.0.1:${metricsBase}/metrics (entry), ${metricsBase + 1}-${metricsBase + RELAYS.length} ` +
      "(relays); Prometheus and Grafana: deploy/prometheus/, deploy/grafana/",
  );
  const web = await progress.step(
    webOn ? "starting the web app" : "web app",
    async () =>
      webOn
        ? startWeb({
            port: webPort,
            deploymentFile,
            logDir,
            progress,
            spawnPart,
            ending: () => ending,
            awaited: webAwaited,
          })
        : { line: "web app left out (X0T_WEB=off)", url: undefined, later: undefined },
    (w) => w.line,
  );
  web.later?.(); // the first build of the web app, now that the network is up

  const order = ["chain", "relay", "exit", "entry", "web"];
  const parts = [...supervisor.parts].sort(
    (a, b) => order.indexOf(a.role) - order.indexOf(b.role) || a.name.localeCompare(b.name),
  );
  progress.line("");
  for (const line of processTable(parts, [
    ["demo page", "-", "-", String(process.pid), `127.0.0.1:${demoPort}`, "-", "(served by npm start itself)"],
  ]))
    progress.line(`  ${line}`);
  progress.line("");
  if (web.url) progress.line(`web app:     ${web.url}  (wallet: RPC ${rpcUrl}, chain ${chainId})`);
  progress.line(`deployment:  ${shown(deploymentFile)}   logs: ${shown(logDir)}/   pids: ${shown(pidFile)}`);
  progress.line(`try:         curl -x socks5h://127.0.0.1:${socksPort} http://127.0.0.1:${demoPort}/`);
  progress.line(`ready in ${seconds(Date.now() - launchedAt)} since npm start. Ctrl-C stops everything.`);
}

/** The first circuit's hops with their regions, from the entry's log (best effort: or undefined). */
function firstPath(entry: Part): string | undefined {
  try {
    for (const line of readFileSync(entry.log, "utf8").split("\n")) {
      if (!line.includes('"circuit built"')) continue;
      const path = (JSON.parse(line) as { path?: string }).path;
      if (path) return describePath(path);
    }
  } catch {
    // no log yet, or a line it cannot read
  }
  return undefined;
}

main().catch((error: unknown) => void fail(error));

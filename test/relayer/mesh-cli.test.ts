/**
 * The mesh from the command line, every node its own process: `x0t bootstrap`, three `x0t relay`
 * that sign their descriptors and publish them to it (and know each other from it), and an
 * `x0t entry` that learns the relays from the bootstrap node alone (no descriptor folder) and
 * carries a download. The deployment file only names the registry whose EIP-712 domain the
 * descriptors are signed in; no chain runs. Also: the config errors name the key.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { descriptorDomain, signNodeDescriptor } from "../../relayer/src/mesh/descriptor.ts";
import { pushDescriptors } from "../../relayer/src/mesh/gossip.ts";
import { ConfigError, parseNodeConfig } from "../../relayer/src/node/config.ts";
import { expectedSha256, startBlobServer } from "./helpers.ts";
import { fieldsOf, identity } from "./mesh-fixtures.ts";
import { freePort } from "../helpers/net.ts";

const run = promisify(execFile);
const CLI = fileURLToPath(new URL("../../relayer/src/cli.ts", import.meta.url));

const address = (n: number) => `0x${n.toString(16).padStart(40, "0")}` as const;

/**
 * A deployment file for chain 31337 with placeholder addresses: enough for the descriptors' EIP-712
 * domain (the registry's address); nothing here talks to a chain.
 */
function fakeDeployment(file: string): string {
  const contracts = {
    X0T: address(1),
    RelayerRegistry: address(2),
    BandwidthCredit: address(3),
    EpochRewards: address(4),
  };
  writeFileSync(file, JSON.stringify({ chainId: 31337, contracts }));
  return file;
}

async function until(condition: () => boolean | Promise<boolean>, ms = 60_000): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 100) {
    if (await condition()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return condition();
}

const listening = (port: number) =>
  new Promise<boolean>((r) => {
    const s = connect({ host: "127.0.0.1", port }, () => {
      s.destroy();
      r(true);
    });
    s.on("error", () => r(false));
  });

describe("the mesh from the command line (bootstrap node, relays, entry as processes)", () => {
  let dir: string;
  const children: ChildProcess[] = [];
  let blob: Awaited<ReturnType<typeof startBlobServer>>;
  const x0t = (args: string[]) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ["ignore", "ignore", "ignore"],
      env: { ...process.env, X0T_LOG_LEVEL: "error" },
    });
    children.push(child);
    return child;
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "x0t-mesh-cli-"));
    blob = await startBlobServer();
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await blob?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("relays publish signed descriptors to a bootstrap node and an entry builds circuits from it", async () => {
    const deployment = fakeDeployment(join(dir, "deployment.json"));
    const signers = ["a", "b", "c"].map((n) => {
      const key = generatePrivateKey();
      const file = join(dir, `${n}.signer`);
      writeFileSync(file, key + "\n", { mode: 0o600 });
      return {
        file,
        address: privateKeyToAccount(key).address,
        operator: privateKeyToAccount(generatePrivateKey()).address,
      };
    });
    const trust = signers.flatMap((s) => ["--trust", `${s.address}:${s.operator}`]);
    const bootPort = await freePort();
    const bootstrap = `http://127.0.0.1:${bootPort}`;
    x0t(["bootstrap", "--listen", `127.0.0.1:${bootPort}`, "--deployment", deployment, ...trust]);
    assert.ok(await until(() => listening(bootPort)), "the bootstrap node listens");
    const regions = ["DE", "FR", "NL"];
    for (const [i, s] of signers.entries())
      x0t([
        "relay",
        ...["--listen", `127.0.0.1:${await freePort()}`, "--keys", join(dir, `r${i}.key`), "--name", `r${i}`],
        ...["--region", regions[i] as string, "--exit", "--allow-loopback-targets"],
        ...["--bootstrap", bootstrap, "--deployment", deployment, "--signer-key", s.file, "--operator", s.operator],
        ...trust,
      ]);
    const held = async () => {
      const res = await fetch(`${bootstrap}/v1/descriptors`).catch(() => undefined);
      return res?.ok ? ((await res.json()) as unknown[]).length : 0;
    };
    assert.ok(await until(async () => (await held()) === 3), "the bootstrap node holds the three descriptors");

    const socks = await freePort();
    x0t([
      "entry",
      ...["--socks", `127.0.0.1:${socks}`, "--hops", "3", "--diversity-prefix", "off"],
      ...["--bootstrap", bootstrap, "--deployment", deployment, "--knowledge", join(dir, "entry.sqlite")],
      ...trust,
    ]);
    assert.ok(await until(() => listening(socks)), "the entry listens");
    const size = 1024 * 1024;
    let body: Buffer | undefined;
    await until(async () => {
      try {
        const { stdout } = await run(
          "curl",
          [
            "-sS",
            "--fail",
            "--max-time",
            "20",
            "-x",
            `socks5h://127.0.0.1:${socks}`,
            `http://127.0.0.1:${blob.port}/blob/${size}`,
          ],
          { encoding: "buffer", maxBuffer: 8 * size },
        );
        body = stdout;
        return true;
      } catch {
        return false;
      }
    });
    assert.ok(body, "a download through three relays known only from the bootstrap node");
    assert.equal(createHash("sha256").update(body).digest("hex"), expectedSha256(size));
  });

  it("a relay listening on a wildcard address without relay.advertiseHost refuses to publish, naming the key", async () => {
    const deployment = fakeDeployment(join(dir, "wildcard-deployment.json"));
    const key = join(dir, "wildcard.signer");
    writeFileSync(key, generatePrivateKey() + "\n", { mode: 0o600 });
    const args = [
      CLI,
      "relay",
      ...["--listen", `0.0.0.0:${await freePort()}`, "--keys", join(dir, "wildcard.key"), "--region", "DE"],
      ...["--bootstrap", "http://127.0.0.1:1", "--deployment", deployment, "--signer-key", key],
      ...["--operator", address(9), "--trust", privateKeyToAccount(generatePrivateKey()).address],
    ];
    const failed = await run(process.execPath, args).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    assert.equal(failed?.code, 2, "the relay does not start");
    assert.match(failed?.stderr ?? "", /relay\.advertiseHost: .*0\.0\.0\.0.*wildcard/);
  });

  it("x0t bootstrap --registry runs without --trust and checks descriptors against the registry", async () => {
    const deployment = fakeDeployment(join(dir, "registry-deployment.json"));
    // Neither a trust list nor the registry: nobody would vouch for a descriptor.
    const refused = await run(process.execPath, [CLI, "bootstrap", "--deployment", deployment]).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    assert.equal(refused?.code, 2);
    assert.match(refused?.stderr ?? "", /--trust: .* or pass --registry/);
    // The registry's RPC is down here (nothing listens on port 1): the node serves, and keeps
    // nothing it cannot check — every descriptor is "trust-unavailable" until the registry is read.
    const port = await freePort();
    const child = x0t([
      ...["bootstrap", "--listen", `127.0.0.1:${port}`, "--deployment", deployment],
      ...["--registry", "--rpc-url", "http://127.0.0.1:1", "--registry-checkpoint", join(dir, "registry.json")],
    ]);
    assert.ok(await until(() => listening(port), 30_000), "the bootstrap node listens");
    const id = await identity();
    const d = await signNodeDescriptor(
      id.signer,
      descriptorDomain(31337, address(2)),
      fieldsOf(id, Math.floor(Date.now() / 1000)),
    );
    assert.deepEqual(await pushDescriptors(`http://127.0.0.1:${port}`, [d]), {
      accepted: 0,
      dropped: { "trust-unavailable": 1 },
    });
    child.kill("SIGTERM");
  });

  it("mesh config errors name the key", () => {
    const fails = (value: unknown, key: RegExp) =>
      assert.throws(
        () => parseNodeConfig(value, "node.json"),
        (e: unknown) => e instanceof ConfigError && key.test(e.message),
      );
    fails({ role: "entry", entry: {} }, /entry\.directory: required unless entry\.mesh\.bootstrap/);
    fails(
      { role: "entry", entry: { mesh: { bootstrap: ["http://127.0.0.1:1"] } } },
      /chain\.deployment: required by entry\.mesh/,
    );
    fails(
      { role: "entry", chain: { deployment: "d.json" }, entry: { mesh: { bootstrap: ["http://127.0.0.1:1"] } } },
      /entry\.mesh\.trust: list the signers/,
    );
    fails(
      { role: "entry", entry: { directory: "d", mesh: { beaconIntervalMs: 10 } } },
      /entry\.mesh\.beaconIntervalMs/,
    );
    fails(
      { role: "relay", relay: { keys: "k", mesh: { directory: "d", extra: 1 } } },
      /relay\.mesh\.extra: unknown key/,
    );
    fails(
      {
        role: "relay",
        chain: { deployment: "d.json" },
        relay: { keys: "k", mesh: { bootstrap: ["http://127.0.0.1:1"], trust: [{ signer: `0x${"1".repeat(40)}` }] } },
      },
      /relay\.mesh\.signerKey: required/,
    );
    const ok = parseNodeConfig({ role: "entry", entry: { directory: "d", mesh: { knowledge: "k.sqlite" } } }, "x");
    assert.equal(ok.role === "entry" && ok.entry.mesh?.beaconIntervalMs, 500);
  });
});

/**
 * deploy/node/: the systemd unit and install.sh. The unit passes `systemd-analyze verify` and an
 * offline `systemd-analyze security` rating (where systemd-analyze exists; there is no running
 * systemd here to start it). install.sh refuses bad arguments before doing anything, then installs
 * for real into a folder through a stand-in for ssh (X0T_SSH runs the remote command locally,
 * X0T_INSTALL_ROOT roots it): the release, the env file 0600, the unit — and the installed node,
 * run from /opt/x0t alone, starts a relay whose key file is 0600. Both scripts pass shellcheck
 * where it is installed.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { closedPort } from "../helpers/net.ts";

const has = (tool: string) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;
const UNIT = "deploy/node/x0t-node@.service";

describe("deploy/node: systemd unit and install.sh", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "x0t-install-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it(
    "the unit verifies and rates as hardened (systemd-analyze security --offline)",
    { skip: has("systemd-analyze") ? false : "systemd-analyze is not installed" },
    () => {
      // verify checks ExecStart's binary: point it at this checkout's Node for the check.
      const units = join(dir, "units");
      mkdirSync(units);
      const node = resolve("node_modules/.bin/node");
      writeFileSync(join(units, "x0t-node@.service"), readFileSync(UNIT, "utf8").replace("/opt/x0t/bin/node", node));
      const verify = spawnSync("systemd-analyze", ["verify", join(units, "x0t-node@relay-1.service")], {
        encoding: "utf8",
      });
      assert.equal(verify.status, 0, verify.stderr);
      assert.equal(verify.stderr.trim(), "", "no unknown keys or warnings");
      const text = readFileSync(UNIT, "utf8");
      for (const line of [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectoryMode=0700",
        "UMask=0077",
        "CapabilityBoundingSet=",
      ])
        assert.ok(text.split("\n").includes(line), line);
      const root = join(dir, "root");
      mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
      writeFileSync(join(root, "etc/systemd/system/x0t-node@.service"), text);
      const security = spawnSync(
        "systemd-analyze",
        ["security", "--offline=yes", `--root=${root}`, "x0t-node@relay-1.service"],
        { encoding: "utf8" },
      );
      const level = /Overall exposure level for x0t-node@relay-1\.service: ([\d.]+)/.exec(security.stdout);
      assert.ok(level, security.stdout + security.stderr);
      console.log(`systemd-analyze security: exposure ${level[1]} (0 = locked down, 10 = exposed)`);
      assert.ok(Number(level[1]) <= 2.0, `exposure ${level[1]}`);
    },
  );

  it(
    "shellcheck passes on install.sh, remote-install.sh and base-image.sh",
    { skip: has("shellcheck") ? false : "shellcheck is not installed (apt-get install shellcheck)" },
    () => {
      const run = spawnSync(
        "shellcheck",
        ["deploy/node/install.sh", "deploy/node/remote-install.sh", "deploy/node/base-image.sh"],
        { encoding: "utf8" },
      );
      assert.equal(run.status, 0, run.stdout);
    },
  );

  it("install.sh refuses bad arguments before building or connecting", () => {
    const env = join(dir, "node.env");
    writeFileSync(env, "NODE_ID=relay-1\nNODE_ROLE=relay\n");
    const run = (...args: string[]) =>
      spawnSync("deploy/node/install.sh", args, {
        encoding: "utf8",
        env: { PATH: process.env.PATH, X0T_SSH: "false" },
      });
    const cases: [string[], RegExp][] = [
      [[], /missing destination: user@host/],
      [["--env-file", env, "a@h", "b@h"], /one destination only/],
      [["--env-file", env, "-oProxyCommand=touch /tmp/x"], /unknown option -oProxyCommand/],
      [["--env-file", env, "a@b@c"], /destination must be user@host or host/],
      [["--env-file", join(dir, "missing.env"), "a@h"], /--env-file .*missing\.env does not exist/],
      [["--bogus", "a@h"], /unknown option --bogus/],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    writeFileSync(join(dir, "bad.env"), "NODE_ID=../etc\n");
    assert.match(run("--env-file", join(dir, "bad.env"), "a@h").stderr, /NODE_ID must be 1-64 letters/);
    writeFileSync(join(dir, "wallet.env"), "NODE_ID=r\nX0T_PRIVATE_KEY=0xabc\n");
    const wallet = run("--env-file", join(dir, "wallet.env"), "a@h");
    assert.equal(wallet.status, 2);
    assert.match(wallet.stderr, /holds a wallet private key/);
    assert.ok(!wallet.stderr.includes("0xabc"));
  });

  it("installs through ssh: /opt/x0t, /etc/x0t/<id>.env 0600, the unit; the installed node runs alone", async () => {
    const root = join(dir, "server");
    const log = join(dir, "ssh.log");
    // A stand-in for ssh: records the destination and runs the remote command here.
    const fakeSsh = join(dir, "fake-ssh");
    writeFileSync(
      fakeSsh,
      `#!/bin/sh\nwhile [ "$1" = -o ]; do echo "option $2" >> "${log}"; shift 2; done\necho "dest $1" >> "${log}"\nshift\nexec sh -c "$1"\n`,
    );
    chmodSync(fakeSsh, 0o755);
    const env = join(dir, "relay.env");
    const port = await closedPort();
    writeFileSync(env, `NODE_ID=relay-9\nNODE_ROLE=exit\nLISTEN_HOST=127.0.0.1\nLISTEN_PORT=${port}\nREGION=DE\n`);
    const install = spawnSync(
      "deploy/node/install.sh",
      ["--env-file", env, "--ssh-option", "Port=2222", "op@relay9.example.org"],
      {
        encoding: "utf8",
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS,
          X0T_SSH: fakeSsh,
          X0T_INSTALL_ROOT: root,
        },
        timeout: 300_000,
      },
    );
    assert.equal(install.status, 0, install.stdout + install.stderr);
    assert.deepEqual(readFileSync(log, "utf8").trim().split("\n"), ["option Port=2222", "dest op@relay9.example.org"]);
    const installedEnv = join(root, "etc/x0t/relay-9.env");
    assert.equal(statSync(installedEnv).mode & 0o777, 0o600, "env file 0600");
    assert.equal(readFileSync(installedEnv, "utf8"), readFileSync(env, "utf8"));
    assert.equal(readFileSync(join(root, "etc/systemd/system/x0t-node@.service"), "utf8"), readFileSync(UNIT, "utf8"));
    for (const file of [
      "bin/node",
      "deploy/node/entrypoint.ts",
      "relayer/src/cli.ts",
      "node_modules/viem/package.json",
      "node_modules/zod/package.json",
      "node_modules/prom-client/package.json",
    ])
      assert.ok(existsSync(join(root, "opt/x0t", file)), file);
    assert.ok(
      !existsSync(join(root, "opt/x0t/web")) && !existsSync(join(root, "opt/x0t/node_modules/hardhat")),
      "runtime only",
    );

    // The unit's command, from the installed tree only, with the unit's environment.
    const state = join(dir, "state");
    const vars = Object.fromEntries(
      readFileSync(installedEnv, "utf8")
        .trim()
        .split("\n")
        .map((l) => l.split("=", 2) as [string, string]),
    );
    const child = spawn(join(root, "opt/x0t/bin/node"), [join(root, "opt/x0t/deploy/node/entrypoint.ts")], {
      cwd: "/",
      env: { ...vars, NODE_ID: "relay-9", X0T_DATA: state },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let output = "";
    child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
    try {
      const deadline = Date.now() + 30_000;
      while (!output.includes('"msg":"relay ready"') && child.exitCode === null && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      assert.match(output, /"msg":"relay ready".*"exit":true/);
      assert.equal(statSync(join(state, "keys/relay-9.key")).mode & 0o777, 0o600, "key file 0600");
      assert.equal(statSync(join(state, "keys")).mode & 0o777, 0o700);
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("--dry-run says what it would do, building and connecting nothing", () => {
    const env = join(dir, "dry.env");
    writeFileSync(env, "NODE_ID=entry-2\nNODE_ROLE=entry\n");
    const r = spawnSync("deploy/node/install.sh", ["--dry-run", "--env-file", env, "root@203.0.113.7"], {
      encoding: "utf8",
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS,
        X0T_SSH: "false",
      },
      timeout: 300_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\/etc\/x0t\/entry-2\.env \(0600\).*systemctl enable --now x0t-node@entry-2/);
  });
});

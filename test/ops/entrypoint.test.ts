/**
 * deploy/node/entrypoint.ts, the node's configuration from the environment (container and
 * systemd): the flags it builds, a missing or bad variable named before anything starts, and a
 * real four-node network started through it as plain processes, with curl through three hops and
 * every node's Prometheus endpoint (X0T_METRICS_PORT) counting it.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "node:http";
import { after, describe, it } from "node:test";
import { NodeConfigError, argsFromEnv } from "../../deploy/node/entrypoint.ts";
import { freePort } from "../helpers/net.ts";
import { type Launched, PAGE, runNetwork, startPage } from "./network.ts";

const ENTRYPOINT = "deploy/node/entrypoint.ts";

describe("deploy/node/entrypoint.ts", () => {
  it("maps the environment to x0t relay|entry flags", () => {
    assert.deepEqual(argsFromEnv({ NODE_ID: "node-1", X0T_DATA: "/d", LISTEN_PORT: "9101", REGION: "DE" }).argv, [
      "relay",
      "--listen",
      "127.0.0.1:9101",
      "--keys",
      "/d/keys/node-1.key",
      "--name",
      "node-1",
      "--advertise-host",
      "127.0.0.1",
      "--descriptor-out",
      "/d/relays/node-1.json",
      "--region",
      "DE",
    ]);
    const exit = argsFromEnv({
      NODE_ID: "x",
      NODE_ROLE: "exit",
      LISTEN_HOST: "0.0.0.0",
      ADVERTISE_HOST: "relay.example.org",
      EXIT_ALLOW_PRIVATE_TARGETS: "1",
    });
    assert.ok(exit.argv.includes("--exit") && exit.argv.includes("--allow-private-targets"));
    assert.equal(exit.argv[exit.argv.indexOf("--advertise-host") + 1], "relay.example.org");
    assert.deepEqual(
      exit.dirs.map((d) => [d.path, d.mode]),
      [
        ["/var/lib/x0t/keys", 0o700],
        ["/var/lib/x0t/relays", 0o755],
      ],
    );
    assert.deepEqual(argsFromEnv({ NODE_ID: "e", NODE_ROLE: "entry", SOCKS_HOST: "::1" }).argv, [
      "entry",
      "--socks",
      "[::1]:10809",
      "--directory",
      "/var/lib/x0t/relays",
      "--hops",
      "3",
    ]);
  });

  it("serves Prometheus metrics where X0T_METRICS_PORT and X0T_METRICS_HOST say, and not otherwise", () => {
    const metrics = (env: Record<string, string>) => {
      const argv = argsFromEnv({ NODE_ID: "n", ...env }).argv;
      const at = argv.indexOf("--metrics");
      return at < 0 ? undefined : argv[at + 1];
    };
    assert.equal(metrics({}), undefined, "off unless asked");
    assert.equal(metrics({ X0T_METRICS_PORT: "" }), undefined);
    assert.equal(metrics({ X0T_METRICS_PORT: "off" }), undefined);
    assert.equal(metrics({ X0T_METRICS_HOST: "0.0.0.0" }), undefined, "a host alone (the image's) turns nothing on");
    assert.equal(metrics({ X0T_METRICS_PORT: "9465" }), "127.0.0.1:9465", "loopback by default");
    assert.equal(metrics({ X0T_METRICS_PORT: "9465", X0T_METRICS_HOST: "0.0.0.0" }), "0.0.0.0:9465");
    assert.equal(metrics({ X0T_METRICS_PORT: "9465", X0T_METRICS_HOST: "::" }), "[::]:9465");
    assert.equal(metrics({ NODE_ROLE: "exit", X0T_METRICS_PORT: "9466" }), "127.0.0.1:9466");
    assert.equal(metrics({ NODE_ROLE: "entry", X0T_METRICS_PORT: "9464" }), "127.0.0.1:9464");
  });

  it("names the variable that is missing or wrong", () => {
    const refuses = (env: Record<string, string>, message: RegExp) =>
      assert.throws(
        () => argsFromEnv(env),
        (e: unknown) => e instanceof NodeConfigError && message.test((e as Error).message),
      );
    refuses({}, /^NODE_ID is required/);
    refuses({ NODE_ID: "../etc" }, /^NODE_ID: expected/);
    refuses({ NODE_ID: "a", NODE_ROLE: "bridge" }, /^NODE_ROLE: expected relay, exit or entry/);
    refuses({ NODE_ID: "a", LISTEN_HOST: "0.0.0.0" }, /^ADVERTISE_HOST is required when LISTEN_HOST is 0\.0\.0\.0/);
    refuses({ NODE_ID: "a", LISTEN_PORT: "99999" }, /^LISTEN_PORT: expected a port/);
    refuses({ NODE_ID: "a", REGION: "de" }, /^REGION: expected two capital letters/);
    refuses({ NODE_ID: "a", NODE_ROLE: "entry", HOPS: "9" }, /^HOPS: expected 1 to 5/);
    refuses({ NODE_ID: "a", EXIT_ALLOW_LOOPBACK_TARGETS: "1" }, /only an exit/);
    refuses(
      { NODE_ID: "a", NODE_ROLE: "exit", EXIT_ALLOW_PRIVATE_TARGETS: "yes" },
      /^EXIT_ALLOW_PRIVATE_TARGETS: expected 1 or 0/,
    );
    refuses({ NODE_ID: "a", X0T_METRICS_PORT: "9464x" }, /^X0T_METRICS_PORT: expected a port from 1 to 65535/);
    refuses({ NODE_ID: "a", NODE_ROLE: "entry", X0T_METRICS_PORT: "0" }, /^X0T_METRICS_PORT: expected a port/);
    refuses({ NODE_ID: "a", X0T_METRICS_PORT: "9464", X0T_METRICS_HOST: "[::1]" }, /^X0T_METRICS_HOST: expected/);
    const run = spawnSync(process.execPath, [ENTRYPOINT], {
      encoding: "utf8",
      env: { PATH: process.env.PATH },
      timeout: 30_000,
    });
    assert.equal(run.status, 2);
    const line = JSON.parse(run.stderr.trim()) as { level: string; msg: string; error: string };
    assert.equal(line.level, "error");
    assert.match(line.error, /^NODE_ID is required/);
  });

  describe("four nodes as processes (what the systemd unit runs)", () => {
    const nodes: Launched[] = [];
    let dir: string | undefined;
    let page: Server | undefined;
    after(async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      page?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it("relays, an exit and the entry come up from their environment; curl goes through three hops; each serves its metrics", async () => {
      dir = await mkdtemp(join(tmpdir(), "x0t-nodes-"));
      const started = await startPage();
      page = started.server;
      const data = dir;
      const metricsPorts = new Map<string, number>();
      const launch = async (name: string, env: Record<string, string>): Promise<Launched> => {
        metricsPorts.set(name, await freePort());
        const child: ChildProcess = spawn(process.execPath, [ENTRYPOINT], {
          env: { PATH: process.env.PATH, X0T_DATA: data, X0T_METRICS_PORT: String(metricsPorts.get(name)), ...env },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
        child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
        return {
          output: () => output,
          stop: () =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null) return resolve();
              child.once("exit", () => resolve());
              child.kill("SIGTERM");
            }),
        };
      };
      const { body } = await runNetwork(launch, dir, started.port, nodes);
      assert.equal(body, PAGE);
      // Every node counted that page on its own /metrics (127.0.0.1 by default).
      const scrape = async (name: string) => (await fetch(`http://127.0.0.1:${metricsPorts.get(name)}/metrics`)).text();
      const value = (text: string, series: string) =>
        Number(new RegExp(`^${series.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
      for (const [name, role] of [
        ["relay-1", "relay"],
        ["relay-2", "relay"],
        ["exit-1", "exit"],
      ]) {
        const text = await scrape(name!);
        assert.equal(value(text, `x0t_node_info{node_id="${name}",role="${role}"}`), 1, `${name}'s metrics`);
        assert.ok(value(text, 'x0t_cells_relayed_total{direction="backward"}') >= 1, `${name} counted the page`);
      }
      const entryMetrics = await scrape("entry-1");
      assert.equal(value(entryMetrics, 'x0t_node_info{node_id="entry",role="entry"}'), 1);
      assert.ok(value(entryMetrics, "x0t_streams_opened_total") >= 1, "the entry counted the stream");
      assert.equal(statSync(join(dir, "keys")).mode & 0o777, 0o700, "keys folder 0700");
      assert.equal(statSync(join(dir, "keys", "relay-1.key")).mode & 0o777, 0o600, "key file 0600");
      const descriptor = JSON.parse(readFileSync(join(dir, "relays", "exit-1.json"), "utf8")) as {
        exit: boolean;
        region: string;
        host: string;
      };
      assert.deepEqual([descriptor.exit, descriptor.region, descriptor.host], [true, "NL", "127.0.0.1"]);
      assert.ok(
        !nodes
          .map((n) => n.output())
          .join("")
          .includes(readFileSync(join(dir, "keys", "relay-1.key"), "utf8").slice(30, 60)),
        "no key material in the logs",
      );
    });
  });
});

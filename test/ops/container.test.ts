/**
 * The Dockerfile, for real, where a container engine runs: build the image, start two relays, an
 * exit and the entry as containers configured only by `-e` variables, and curl through three hops;
 * the seed's `-p …:10809` shape answers a SOCKS5 greeting; a missing NODE_ID stops the container
 * with a line naming it. Skips, printing why, where no engine or no base image is available.
 *
 * Base image: X0T_NODE_BASE_IMAGE, else localhost/x0t-node-base:24 if present (built by
 * deploy/node/base-image.sh on hosts without registry access), else the Dockerfile's default
 * (node:24-bookworm-slim, pulled). Behind a TLS-intercepting proxy NODE_EXTRA_CA_CERTS is passed
 * to the npm step as a build secret.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chownSync, mkdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { closedPort } from "../helpers/net.ts";
import { type Launched, PAGE, runNetwork, startPage } from "./network.ts";

const IMAGE = "localhost/x0t-node:test";
const PREFIX = `x0t-test-${process.pid}`;

function sh(cmd: string, args: string[], timeout = 60_000) {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout, maxBuffer: 64 * 1024 * 1024 });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

/**
 * The engine, its extra `run`/`build` flags and the base image, or why there is none. Podman on
 * a host without CAP_SYS_RESOURCE and with hybrid cgroups (these VMs) needs runc and ulimits no
 * higher than the host's: tried only when the plain run fails.
 */
function findEngine(): { engine: string; flags: string[]; base: string } | { skip: string } {
  const reasons: string[] = [];
  for (const engine of ["docker", "podman"]) {
    const info = sh(engine, ["info"], 30_000);
    if (!info.ok) {
      reasons.push(`${engine}: ${info.out.trim().split("\n").at(-1) ?? "not runnable"}`);
      continue;
    }
    const candidates = [
      process.env.X0T_NODE_BASE_IMAGE,
      "localhost/x0t-node-base:24",
      "docker.io/library/node:24-bookworm-slim",
    ];
    const base = candidates.find(
      (image) => image && (sh(engine, ["image", "inspect", image]).ok || sh(engine, ["pull", image], 120_000).ok),
    );
    if (!base) {
      reasons.push(`${engine}: no base image (no registry access? build one with deploy/node/base-image.sh)`);
      continue;
    }
    const workarounds =
      engine === "podman" ? ["--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"] : [];
    for (const flags of [[], workarounds]) {
      const probe = sh(engine, ["run", "--rm", ...flags, "--entrypoint", "node", base, "-e", "0"]);
      if (probe.ok) return { engine, flags, base };
      reasons.push(`${engine} run ${flags.join(" ")}: ${probe.out.trim().split("\n").at(-1)}`);
      if (flags === workarounds) break;
    }
  }
  return { skip: `no container engine runs here (${reasons.join("; ")})` };
}

const found = findEngine();
if ("skip" in found) console.log(`container test skipped: ${found.skip}`);

describe("the node's container image", { skip: "skip" in found ? found.skip : false, timeout: 900_000 }, () => {
  const { engine, flags, base } = found as { engine: string; flags: string[]; base: string };
  const nodes: Launched[] = [];
  let dir: string;
  let page: Server | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "x0t-container-"));
    // The image's user is node (uid 1000): it owns the data volume, as a named volume would be.
    mkdirSync(join(dir, "data"), { mode: 0o750 });
    if (process.getuid?.() === 0) chownSync(join(dir, "data"), 1000, 1000);
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    page?.close();
    // One at a time: an engine may stop at the first name that does not exist.
    for (const name of ["relay-1", "relay-2", "exit-1", "entry-1", "published", "no-id"])
      sh(engine, ["rm", "-f", `${PREFIX}-${name}`]);
    await rm(dir, { recursive: true, force: true });
  });

  it("builds: multi-stage, runs as a non-root user, small", () => {
    const secret = process.env.NODE_EXTRA_CA_CERTS
      ? ["--secret", `id=npm_ca,src=${process.env.NODE_EXTRA_CA_CERTS}`]
      : [];
    const build = sh(
      engine,
      ["build", ...flags, "--build-arg", `BASE_IMAGE=${base}`, ...secret, "-t", IMAGE, "."],
      900_000,
    );
    assert.ok(build.ok, build.out.slice(-4000));
    const user = sh(engine, ["image", "inspect", "--format", "{{.Config.User}}", IMAGE]);
    assert.equal(user.out.trim(), "node");
    const size = Number(sh(engine, ["image", "inspect", "--format", "{{.Size}}", IMAGE]).out.trim());
    const baseSize = Number(sh(engine, ["image", "inspect", "--format", "{{.Size}}", base]).out.trim());
    console.log(`image ${IMAGE}: ${(size / 1e6).toFixed(0)} MB (base ${(baseSize / 1e6).toFixed(0)} MB)`);
    assert.ok(size - baseSize < 100e6, `the node adds ${(size - baseSize) / 1e6} MB to its base`);
    const id = sh(engine, ["run", "--rm", ...flags, "--entrypoint", "id", IMAGE, "-u"]);
    assert.equal(id.out.trim(), "1000");
  });

  it("a missing NODE_ID stops the container with a line naming it", () => {
    const run = sh(engine, ["run", "--rm", ...flags, "--name", `${PREFIX}-no-id`, "-e", "NODE_ROLE=entry", IMAGE]);
    assert.equal(run.ok, false);
    assert.match(run.out, /"msg":"configuration","error":"NODE_ID is required/);
  });

  it("two relays, an exit and the entry as containers from -e variables: curl through three hops", async () => {
    const started = await startPage();
    page = started.server;
    const launch = async (name: string, env: Record<string, string>): Promise<Launched> => {
      const args = [
        "run",
        "--rm",
        ...flags,
        "--name",
        `${PREFIX}-${name}`,
        "--network",
        "host",
        "-v",
        `${join(dir, "data")}:/var/lib/x0t`,
      ];
      for (const [k, v] of Object.entries(env)) args.push("-e", `${k}=${v}`);
      const child: ChildProcess = spawn(engine, [...args, IMAGE], { stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
      child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
      return {
        output: () => output,
        stop: async () => {
          sh(engine, ["stop", "-t", "5", `${PREFIX}-${name}`], 30_000);
          if (child.exitCode === null) await new Promise((r) => child.once("exit", r));
        },
      };
    };
    const { body } = await runNetwork(launch, join(dir, "data"), started.port, nodes);
    assert.equal(body, PAGE);
    const key = statSync(join(dir, "data", "keys", "relay-1.key"));
    assert.equal(key.mode & 0o777, 0o600, "key file 0600");
    assert.equal(key.uid, 1000, "written by the container's unprivileged user");
  });

  it("the seed's shape: -p <host>:10809 publishes the entry's SOCKS5 port (greeting answered)", async () => {
    const port = await closedPort();
    const run = sh(engine, [
      "run",
      "-d",
      ...flags,
      "--name",
      `${PREFIX}-published`,
      "-p",
      `127.0.0.1:${port}:10809`,
      "-e",
      "NODE_ID=node-1",
      "-e",
      "NODE_ROLE=entry",
      "-e",
      "RELAY_DIRECTORY=/tmp",
      IMAGE,
    ]);
    assert.ok(run.ok, run.out);
    const deadline = Date.now() + 30_000;
    let reply: Buffer = Buffer.alloc(0);
    while (Date.now() < deadline) {
      reply = await new Promise<Buffer>((resolve) => {
        const socket = connect({ host: "127.0.0.1", port });
        const timer = setTimeout(() => socket.destroy(), 2_000);
        socket.on("connect", () => socket.write(Buffer.of(5, 1, 0)));
        socket.on("data", (d: Buffer) => {
          clearTimeout(timer);
          socket.destroy();
          resolve(d);
        });
        socket.on("error", () => {});
        socket.on("close", () => resolve(Buffer.alloc(0)));
      });
      if (reply.length > 0) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.deepEqual([...reply], [5, 0], "SOCKS5, no authentication");
  });
});

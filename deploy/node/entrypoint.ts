/**
 * The node's entrypoint in a container (Dockerfile) and under systemd (deploy/node/x0t-node.service):
 * reads the configuration from the environment, turns it into `x0t relay|entry` flags and runs
 * relayer/src/cli.ts in this process (signals reach the CLI, which closes the node cleanly).
 * A missing or bad variable stops it before anything starts, with one JSON log line naming it.
 *
 *   NODE_ID        required   name of the node (letters, digits, . _ -), e.g. node-1
 *   NODE_ROLE      relay      relay | exit | entry
 *   X0T_DATA       /var/lib/x0t   keys/<NODE_ID>.key (created 0600) and relays/ (descriptors)
 *   relay, exit:   LISTEN_HOST (127.0.0.1), LISTEN_PORT (9001), ADVERTISE_HOST (what others dial;
 *                  required when LISTEN_HOST is 0.0.0.0 or ::), REGION (two capital letters),
 *                  CREATES_PER_SECOND, DESCRIPTOR_DIR (X0T_DATA/relays)
 *   exit only:     EXIT_ALLOW_PRIVATE_TARGETS=1, EXIT_ALLOW_LOOPBACK_TARGETS=1 (test networks only)
 *   entry:         SOCKS_HOST (127.0.0.1), SOCKS_PORT (10809), RELAY_DIRECTORY (X0T_DATA/relays),
 *                  HOPS (3)
 *   X0T_METRICS_PORT   Prometheus /metrics on this port (unset, empty or "off": none)
 *   X0T_METRICS_HOST   where it listens (127.0.0.1; the image: 0.0.0.0, publish it on the host's
 *                      loopback: -p 127.0.0.1:9464:9464)
 *   X0T_LOG_LEVEL  debug | info | warn | error
 *
 * The container image sets LISTEN_HOST and SOCKS_HOST to 0.0.0.0 (a published port reaches the
 * container's interface, not its loopback); publish the SOCKS port on the host's loopback only:
 * `docker run -p 127.0.0.1:10809:10809 -e NODE_ID=entry-1 -e NODE_ROLE=entry …`.
 */
import { chmodSync, existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";

export class NodeConfigError extends Error {
  override name = "NodeConfigError";
}

type Env = Record<string, string | undefined>;

const ROLES = ["relay", "exit", "entry"] as const;
const WILDCARD = new Set(["0.0.0.0", "::", "[::]"]);

function port(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!/^\d{1,5}$/.test(raw) || value < 1 || value > 65535)
    throw new NodeConfigError(`${name}: expected a port from 1 to 65535, got "${raw}"`);
  return value;
}

function flag(env: Env, name: string): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "" || raw === "0" || raw === "false") return false;
  if (raw === "1" || raw === "true") return true;
  throw new NodeConfigError(`${name}: expected 1 or 0, got "${raw}"`);
}

const hostPort = (host: string, p: number) =>
  host.includes(":") && !host.startsWith("[") ? `[${host}]:${p}` : `${host}:${p}`;

/** `--metrics host:port` from X0T_METRICS_PORT and X0T_METRICS_HOST, or nothing when it is off. */
function metricsFlag(env: Env): string[] {
  const raw = env.X0T_METRICS_PORT;
  if (raw === undefined || raw === "" || raw === "off") return [];
  const host = env.X0T_METRICS_HOST || "127.0.0.1";
  if (/\s/.test(host) || host.startsWith("["))
    throw new NodeConfigError(`X0T_METRICS_HOST: expected an address or a name (IPv6 without brackets), got "${host}"`);
  return ["--metrics", hostPort(host, port(env, "X0T_METRICS_PORT", 0))];
}

/**
 * The CLI arguments for `env`, and the folders to prepare. Pure: throws NodeConfigError naming
 * the variable; touches no file.
 */
export function argsFromEnv(env: Env): { argv: string[]; dirs: { path: string; mode: number }[] } {
  const id = env.NODE_ID;
  if (id === undefined || id === "")
    throw new NodeConfigError(
      "NODE_ID is required: a name for this node (letters, digits, . _ -), e.g. -e NODE_ID=node-1",
    );
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(id) || id.startsWith("."))
    throw new NodeConfigError(`NODE_ID: expected 1-64 letters, digits, ".", "_" or "-", got "${id}"`);
  const role = (env.NODE_ROLE || "relay") as (typeof ROLES)[number];
  if (!ROLES.includes(role)) throw new NodeConfigError(`NODE_ROLE: expected relay, exit or entry, got "${role}"`);
  const data = env.X0T_DATA || "/var/lib/x0t";

  if (role === "entry") {
    const directory = env.RELAY_DIRECTORY || join(data, "relays");
    const hops = env.HOPS || "3";
    if (!/^[1-5]$/.test(hops)) throw new NodeConfigError(`HOPS: expected 1 to 5, got "${hops}"`);
    const socks = hostPort(env.SOCKS_HOST || "127.0.0.1", port(env, "SOCKS_PORT", 10809));
    return {
      argv: ["entry", "--socks", socks, "--directory", directory, "--hops", hops, ...metricsFlag(env)],
      dirs: [],
    };
  }

  const host = env.LISTEN_HOST || "127.0.0.1";
  const listenPort = port(env, "LISTEN_PORT", 9001);
  const advertise = env.ADVERTISE_HOST || (WILDCARD.has(host) ? undefined : host);
  if (advertise === undefined)
    throw new NodeConfigError(
      `ADVERTISE_HOST is required when LISTEN_HOST is ${host}: the address or name other nodes dial to reach this relay`,
    );
  if (env.REGION && !/^[A-Z]{2}$/.test(env.REGION))
    throw new NodeConfigError(`REGION: expected two capital letters (ISO 3166), got "${env.REGION}"`);
  const keysDir = join(data, "keys");
  const descriptors = env.DESCRIPTOR_DIR || join(data, "relays");
  const argv = [
    "relay",
    "--listen",
    hostPort(host, listenPort),
    "--keys",
    join(keysDir, `${id}.key`),
    "--name",
    id,
    "--advertise-host",
    advertise,
    "--descriptor-out",
    join(descriptors, `${id}.json`),
  ];
  if (env.REGION) argv.push("--region", env.REGION);
  if (env.CREATES_PER_SECOND) argv.push("--creates-per-second", env.CREATES_PER_SECOND);
  argv.push(...metricsFlag(env));
  const allowPrivate = flag(env, "EXIT_ALLOW_PRIVATE_TARGETS");
  const allowLoopback = flag(env, "EXIT_ALLOW_LOOPBACK_TARGETS");
  if (role === "exit") {
    argv.push("--exit");
    if (allowPrivate) argv.push("--allow-private-targets");
    if (allowLoopback) argv.push("--allow-loopback-targets");
  } else if (allowPrivate || allowLoopback)
    throw new NodeConfigError("EXIT_ALLOW_*_TARGETS: only an exit (NODE_ROLE=exit) opens target connections");
  return {
    argv,
    dirs: [
      { path: keysDir, mode: 0o700 },
      { path: descriptors, mode: 0o755 },
    ],
  };
}

/** Creates the folders the node writes to (keys 0700: the static keys are secrets). */
export function prepareDirs(dirs: { path: string; mode: number }[]): void {
  for (const { path, mode } of dirs) {
    if (!existsSync(path)) mkdirSync(path, { recursive: true, mode });
    if (mode === 0o700 && (statSync(path).mode & 0o077) !== 0) chmodSync(path, mode);
  }
}

function fail(message: string): never {
  process.stderr.write(
    JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "configuration", error: message }) + "\n",
  );
  process.exit(2);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let argv: string[];
  try {
    const config = argsFromEnv(process.env);
    prepareDirs(config.dirs);
    argv = config.argv;
  } catch (error) {
    if (error instanceof NodeConfigError) fail(error.message);
    fail(`cannot prepare the node's folders: ${(error as Error).message}`);
  }
  const { main } = await import("../../relayer/src/cli.ts");
  const code = await main(argv);
  if (code !== 0) process.exit(code);
}

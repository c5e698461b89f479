/**
 * The fixed loopback ports `npm start` needs, checked before anything starts: a port that is taken
 * is named with the part that wanted it, the variable that moves it and, when Linux's /proc tells,
 * the process holding it. Nothing here kills anything: the processes a crashed run left behind are
 * stopped from the pid file (supervisor.ts), everything else is the user's.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { createServer } from "node:net";

export interface WantedPort {
  port: number;
  /** The part that will listen there, e.g. "SOCKS5 entry". */
  what: string;
  /** The variable that moves it, e.g. "X0T_SOCKS_PORT". */
  variable: string;
}

export interface BusyPort extends WantedPort {
  holder?: { pid: number; command: string };
}

/** Whether 127.0.0.1:`port` can be bound now (a listener on 0.0.0.0 or 127.0.0.1 makes it busy). */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The ports of `wanted` that cannot be bound, each with its holder when it can be found. */
export async function busyPorts(wanted: readonly WantedPort[]): Promise<BusyPort[]> {
  const busy: BusyPort[] = [];
  for (const w of wanted) if (!(await canBind(w.port))) busy.push({ ...w, holder: portHolder(w.port) });
  return busy;
}

/** One line per busy port: who holds it, how to move it (and what wanted it, unless `named` elsewhere). */
export function describeBusy(b: BusyPort, named = false): string {
  const holder = b.holder
    ? `pid ${b.holder.pid} (${b.holder.command})`
    : "something with no listening socket this user can see (a connection's local port?)";
  const port = named ? `port ${b.port}` : `port ${b.port} for the ${b.what}`;
  return `${port} is in use by ${holder}: stop it, or set ${b.variable} to another port`;
}

/** Socket inodes listening on `port` (IPv4 and IPv6), from /proc/net/tcp{,6}. */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the 10th field.
      const local = fields[1];
      if (!local || fields[3] !== "0A") continue;
      if (parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port && fields[9]) inodes.add(fields[9]);
    }
  }
  return inodes;
}

/** The command line of `pid` as one string (arguments joined by spaces), or undefined. */
export function commandOf(pid: number): string | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return raw.replace(/\0+$/, "").split("\0").join(" ") || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The process listening on `port`, found by its socket's inode among every process's open files
 * (Linux; processes of other users are invisible without privileges). Undefined when not found.
 */
export function portHolder(port: number): { pid: number; command: string } | undefined {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1]!)) {
        const command = commandOf(Number(pid)) ?? "?";
        return { pid: Number(pid), command: command.length > 120 ? `${command.slice(0, 117)}...` : command };
      }
    }
  }
  return undefined;
}

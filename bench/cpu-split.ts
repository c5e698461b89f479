/**
 * Where a process's CPU went, from the V8 CPU profiles of a bench run (docs/protocol.md, "Where
 * the CPU goes now"):
 *
 *   X0T_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench -- --only=throughput
 *   node bench/cpu-split.ts /tmp/prof
 *
 * One row per profile (per process: the relays and entries the bench spawned), shares of the
 * samples that were not idle. A sample counts for the first category found walking its stack from
 * the leaf: GC, crypto (node:crypto and our cell cipher), socket calls from JS (stream writes and
 * reads, with the system time they spend), allocation and copies (node:buffer), else other JS.
 * Rows are in pid order, which is the bench's start order: r1, r2 (the middle relay), r3 (the
 * exit), the 1-hop entry, the 3-hop entry; `--names=a,b,…` labels them.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

type Category = "gc" | "crypto" | "socket" | "alloc" | "other";
const CATEGORIES: Category[] = ["crypto", "socket", "gc", "alloc", "other"];

function categoryOf(frame: ProfileNode["callFrame"]): Category | undefined {
  const { functionName: fn, url } = frame;
  if (fn === "(garbage collector)") return "gc";
  if (url.includes("internal/crypto") || url.endsWith("crypto/cipher.ts")) return "crypto";
  if (
    url.includes("internal/stream_base_commons") ||
    /^(writeBuffer|writev|writeUtf8String|writeLatin1String|readStart|readStop|onStreamRead|shutdown)$/.test(fn)
  )
    return "socket";
  if (url === "node:buffer" || /^(concat|allocUnsafe|allocUnsafeSlow|copy|subarray)$/.test(fn)) return "alloc";
  return undefined;
}

function split(file: string): { busyMs: number; shares: Record<Category, number> } {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const counts: Record<Category, number> = { gc: 0, crypto: 0, socket: 0, alloc: 0, other: 0 };
  let busy = 0;
  let busyMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const leaf = byId.get(profile.samples[i] as number);
    if (!leaf || leaf.callFrame.functionName === "(idle)") continue;
    busy++;
    busyMs += (profile.timeDeltas[i] ?? 0) / 1000;
    let category: Category | undefined;
    for (let n: ProfileNode | undefined = leaf, depth = 0; n && depth < 200; depth++) {
      category ??= categoryOf(n.callFrame);
      const up = parent.get(n.id);
      n = up === undefined ? undefined : byId.get(up);
    }
    counts[category ?? "other"]++;
  }
  const shares = Object.fromEntries(CATEGORIES.map((c) => [c, busy ? counts[c] / busy : 0])) as Record<
    Category,
    number
  >;
  return { busyMs, shares };
}

const dir = process.argv.slice(2).find((a) => !a.startsWith("--"));
const names =
  process.argv
    .find((a) => a.startsWith("--names="))
    ?.slice("--names=".length)
    .split(",") ?? [];
const pidOf = (f: string) => Number(/\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(f)?.[1] ?? 0);
if (!dir) {
  console.error("usage: node bench/cpu-split.ts <folder of .cpuprofile files>");
  process.exit(2);
}
const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
console.log("| process | busy s | crypto | socket calls from JS | GC | allocation + copies | other JS |");
console.log("| --- | --: | --: | --: | --: | --: | --: |");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".cpuprofile"))
  .sort((a, b) => pidOf(a) - pidOf(b));
for (const [i, f] of files.entries()) {
  const { busyMs, shares } = split(join(dir, f));
  const name = `${names[i] ?? `process ${i + 1}`} (pid ${pidOf(f)})`;
  console.log(
    `| ${name} | ${(busyMs / 1000).toFixed(1)} | ${pct(shares.crypto)} | ${pct(shares.socket)} | ${pct(shares.gc)} | ${pct(shares.alloc)} | ${pct(shares.other)} |`,
  );
}

/**
 * Prints a Prometheus file_sd target list for a local network that follows the metrics port
 * convention (relayer/src/metrics): the entry on `base`, relay i (1…relays) on base + i; the last
 * `exits` relays are exits (npm start: relay-4 and relay-5).
 *
 *   node deploy/prometheus/targets.ts [--base 9464] [--relays 5] [--exits 2] [--host 127.0.0.1]
 */
import { parseArgs } from "node:util";

export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

export function localTargets(base: number, relays: number, host = "127.0.0.1", exits = 0): TargetGroup[] {
  if (!Number.isInteger(base) || base < 1 || base + relays > 65535)
    throw new RangeError(`--base: expected a port from 1 to ${65535 - relays}, got ${base}`);
  if (!Number.isInteger(relays) || relays < 0 || relays > 100)
    throw new RangeError(`--relays: expected 0..100, got ${relays}`);
  if (!Number.isInteger(exits) || exits < 0 || exits > relays)
    throw new RangeError(`--exits: expected 0..${relays}, got ${exits}`);
  return [
    { targets: [`${host}:${base}`], labels: { role: "entry", node: "entry" } },
    ...Array.from({ length: relays }, (_, i) => ({
      targets: [`${host}:${base + i + 1}`],
      labels: { role: i >= relays - exits ? "exit" : "relay", node: `relay-${i + 1}` },
    })),
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      base: { type: "string", default: process.env.X0T_METRICS_BASE_PORT ?? "9464" },
      relays: { type: "string", default: "5" },
      exits: { type: "string", default: "2" },
      host: { type: "string", default: "127.0.0.1" },
    },
  });
  try {
    const groups = localTargets(Number(values.base), Number(values.relays), values.host, Number(values.exits));
    process.stdout.write(JSON.stringify(groups, null, 2) + "\n");
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
}

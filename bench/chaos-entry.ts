/**
 * Chaos harness helper: the SOCKS5 entry (relayer/src/node/entry.ts) with its mesh loop — beacons,
 * standby circuits, route choice by Knowledge — at its defaults but for the prefix rule, which a
 * network on one host turns off. It reports what it sees as JSON lines on stdout for the harness to
 * time detection by:
 *
 *   {"ev":"ready","port":...}
 *   {"ev":"built","t":...,"id":"c3","role":"standby","cls":"3:dl0x","path":["r3","r7","r1"]}
 *   {"ev":"closed","t":...,"id":"c3","path":[...],"reason":...}
 *   {"ev":"suspected","t":...,"relay":"r7","why":"...","ms":600000}
 *   {"ev":"decision","t":...,"action":"promote-standby","relay":"r7",...}
 *
 * argv: <descriptor folder> <SOCKS port> [knowledge file].
 */
import { initCrypto } from "../relayer/src/crypto/keys.ts";
import { createLogger } from "../relayer/src/log.ts";
import { readDirectory } from "../relayer/src/node/directory.ts";
import { startEntry } from "../relayer/src/node/entry.ts";

const [dir, port, knowledge] = [process.argv[2] as string, Number(process.argv[3]), process.argv[4]];
const emit = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + "\n");

await initCrypto();
const relays = readDirectory(dir);
const logger = createLogger({
  level: "info",
  write: (line) => {
    const record = JSON.parse(line) as Record<string, unknown> & { msg?: string; level?: string };
    if (record.msg?.startsWith("relay suspected"))
      emit({ ev: "suspected", t: Date.now(), relay: record.relay, why: record.why, ms: record.ms });
    else if (record.msg === "mesh decision") emit({ ev: "decision", t: Date.now(), ...record, msg: undefined });
    else if (record.level === "warn" || record.level === "error") emit({ ev: "log", t: Date.now(), ...record });
  },
});
const entry = await startEntry({
  socksHost: "127.0.0.1",
  socksPort: port,
  hops: 3,
  directory: () => relays,
  diversity: { prefix: false },
  ...(knowledge ? { knowledge } : {}),
  logger,
});

const seen = new Set<string>();
const watch = () => {
  for (const pc of entry.pool.circuits()) {
    if (seen.has(pc.id)) continue;
    seen.add(pc.id);
    const path = pc.path.map((r) => r.name);
    emit({ ev: "built", t: Date.now(), id: pc.id, role: pc.role, cls: pc.isolation, path });
    pc.circuit.onClose((error) => emit({ ev: "closed", t: Date.now(), id: pc.id, path, reason: error.reason }));
  }
};
setInterval(watch, 10);
emit({ ev: "ready", port: entry.socks.address.port });
process.on("SIGTERM", () => void entry.close().finally(() => process.exit(0)));

/**
 * Chaos harness helper: today's SOCKS5 entry (relayer/src/node/entry.ts, default timeouts, 3 hops)
 * over a folder of descriptors, reporting what it sees as JSON lines on stdout for the harness to
 * time detection by:
 *
 *   {"ev":"ready","port":...}
 *   {"ev":"built","t":...,"id":...,"path":["r3","r7","r1"]}
 *   {"ev":"closed","t":...,"id":...,"path":[...],"reason":...}
 *   {"ev":"suspected","t":...,"relay":"r7","why":"..."}
 *
 * argv: <descriptor folder> <SOCKS port>. Phase 2 replaces this entry with the mesh-driven one.
 */
import { initCrypto } from "../relayer/src/crypto/keys.ts";
import { createLogger } from "../relayer/src/log.ts";
import type { ClientCircuit } from "../relayer/src/circuit/client.ts";
import { readDirectory } from "../relayer/src/node/directory.ts";
import { startEntry } from "../relayer/src/node/entry.ts";

const [dir, port] = [process.argv[2] as string, Number(process.argv[3])];
const emit = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + "\n");

await initCrypto();
const relays = readDirectory(dir);
const nameOf = new Map(relays.map((r) => [`${r.host}:${r.port}`, r.name]));
const logger = createLogger({
  level: "info",
  write: (line) => {
    const record = JSON.parse(line) as { msg?: string; relay?: string; why?: string };
    if (record.msg === "relay suspected")
      emit({ ev: "suspected", t: Date.now(), relay: record.relay, why: record.why });
  },
});
const entry = await startEntry({ socksHost: "127.0.0.1", socksPort: port, hops: 3, directory: () => relays, logger });

const seen = new WeakSet<ClientCircuit>();
let next = 0;
const watch = () => {
  for (const c of entry.circuits()) {
    if (seen.has(c)) continue;
    seen.add(c);
    const id = ++next;
    const path = c.path.map((h) => nameOf.get(`${h.host}:${h.port}`) ?? `${h.host}:${h.port}`);
    emit({ ev: "built", t: Date.now(), id, path });
    c.onClose((error) => emit({ ev: "closed", t: Date.now(), id, path, reason: error.reason }));
  }
};
setInterval(watch, 10);
emit({ ev: "ready", port: entry.socks.address.port });
process.on("SIGTERM", () => void entry.close().finally(() => process.exit(0)));

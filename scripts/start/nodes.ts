/**
 * The network `npm start` runs and the config file of each node in it, as `x0t node start
 * --config` reads them on any machine (relayer/src/node/config.ts).
 *
 * Five paid relays in four regions: relay-1 and relay-3 share DE, so the entry's path choice,
 * which prefers regions not used yet on a path, must keep them apart; two exits in different
 * regions (NL, SE). Operators are test accounts 4–6, 8 and 9; account 7 is the payer.
 */
import type { Address } from "viem";

export interface RelayPlan {
  name: string;
  role: "relay" | "exit";
  region: string;
  /** Hardhat test account of its operator. */
  account: number;
}

export const RELAYS: readonly RelayPlan[] = [
  { name: "relay-1", role: "relay", region: "DE", account: 4 },
  { name: "relay-2", role: "relay", region: "FR", account: 5 },
  { name: "relay-3", role: "relay", region: "DE", account: 6 },
  { name: "relay-4", role: "exit", region: "NL", account: 8 },
  { name: "relay-5", role: "exit", region: "SE", account: 9 },
];
export const PAYER_ACCOUNT = 7;

/** A paid relay (or exit) on loopback that settles every 5 s and claims whatever it earned. */
export function relayConfig(
  r: RelayPlan,
  o: {
    deployment: string;
    port: number;
    metricsPort: number;
    keys: string;
    signerKey: string;
    operator: Address;
    descriptor: string;
    accounting: string;
    /** The relays' descriptors: each relay measures the others, attests their uptime and EXTENDs only to them. */
    peers: string;
  },
) {
  return {
    role: r.role,
    chain: { deployment: o.deployment },
    metrics: `127.0.0.1:${o.metricsPort}`,
    relay: {
      listen: `127.0.0.1:${o.port}`,
      keys: o.keys,
      name: r.name,
      region: r.region,
      descriptorOut: o.descriptor,
      mesh: { directory: o.peers },
      payments: {
        operator: o.operator,
        signerKey: o.signerKey,
        accounting: o.accounting,
        settleEverySeconds: 5,
        claimAboveX0T: "0",
        uptime: { peers: o.peers },
      },
    },
    // Only for this demo on one machine: the page it serves is on loopback.
    ...(r.role === "exit" ? { exit: { allowLoopbackTargets: true } } : {}),
  };
}

/** The SOCKS5 entry: 3-hop circuits through the relays in `directory`, every hop paid in-band. */
export function entryConfig(o: {
  deployment: string;
  socksPort: number;
  metricsPort: number;
  directory: string;
  clientKey: string;
  payerState: string;
  /** What the entry's mesh learnt of each relay (latency, failures), kept across restarts. */
  knowledge: string;
}) {
  return {
    role: "entry",
    chain: { deployment: o.deployment },
    metrics: `127.0.0.1:${o.metricsPort}`,
    entry: {
      socks: `127.0.0.1:${o.socksPort}`,
      directory: o.directory,
      hops: 3,
      mesh: { knowledge: o.knowledge },
      payer: { clientKey: o.clientKey, state: o.payerState, lockMiB: 64, lockEpochs: 2 },
    },
  };
}

/** "relay-1>relay-4" (the entry's "circuit built" log field) → "relay-1 (DE) > relay-4 (NL, exit)". */
export function describePath(path: string): string {
  return path
    .split(">")
    .map((name) => {
      const r = RELAYS.find((x) => x.name === name);
      return r ? `${name} (${r.region}${r.role === "exit" ? ", exit" : ""})` : name;
    })
    .join(" > ");
}

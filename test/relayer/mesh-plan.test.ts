/** Route choice (mesh/plan.ts): diversity by region, network prefix and operator; weighted spread; standbys. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { generateStaticKeys, initCrypto, publicKeysOf } from "../../relayer/src/crypto/keys.ts";
import { createLogger } from "../../relayer/src/log.ts";
import {
  type Candidate,
  conflict,
  networkPrefix,
  PlanError,
  planPath,
  planStandbys,
} from "../../relayer/src/mesh/plan.ts";
import { descriptorOf, type DirectoryEntry } from "../../relayer/src/node/directory.ts";
import { folderDirectory } from "../../relayer/src/node/run-mesh.ts";
import { chooseRoute, type NodeInfo, nodeId } from "../../relayer/src/node/route.ts";
import { relayEntry } from "./mesh-fixtures.ts";

/** A deterministic uniform generator (mulberry32), so that failures replay. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ok = (entry: DirectoryEntry, rttMs = 20, health = 1): Candidate => ({ entry, rttMs, health, state: "ok" });

function assertDiverse(path: DirectoryEntry[]) {
  for (let i = 0; i < path.length; i++)
    for (let j = i + 1; j < path.length; j++) {
      const a = path[i] as DirectoryEntry;
      const b = path[j] as DirectoryEntry;
      assert.notEqual(a.name, b.name);
      if (a.region) assert.notEqual(a.region, b.region, `${a.name} and ${b.name} share region ${a.region}`);
      assert.notEqual(networkPrefix(a.host), networkPrefix(b.host), `${a.name} and ${b.name} share a prefix`);
      if (a.operator) assert.notEqual(a.operator, b.operator, `${a.name} and ${b.name} share an operator`);
    }
}

describe("mesh plan: network prefixes", () => {
  it("groups IPv4 by /16 and IPv6 by /32, mapped IPv4 as IPv4, names by name", () => {
    assert.equal(networkPrefix("10.1.2.3"), networkPrefix("10.1.200.9"));
    assert.notEqual(networkPrefix("10.1.2.3"), networkPrefix("10.2.2.3"));
    assert.equal(networkPrefix("2001:db8:1::1"), networkPrefix("2001:db8:ffff::2"));
    assert.equal(networkPrefix("[2001:0db8::1]"), networkPrefix("2001:db8:abcd::1"));
    assert.notEqual(networkPrefix("2001:db8::1"), networkPrefix("2001:db9::1"));
    assert.equal(networkPrefix("::ffff:192.168.7.7"), networkPrefix("192.168.1.1"));
    assert.equal(networkPrefix("Relay.Example"), networkPrefix("relay.example"));
    assert.notEqual(networkPrefix("a.example"), networkPrefix("b.example"));
  });

  it("folds every spelling of an IPv4-carrying IPv6 address to the IPv4 /16, and parses IPv6 fully", () => {
    const ten1 = networkPrefix("10.1.2.3");
    for (const mapped of [
      "[::ffff:a01:909]", // hex-mapped: 10.1.9.9
      "::FFFF:0A01:0909",
      "0:0:0:0:0:ffff:10.1.9.9",
      "0000:0000:0000:0000:0000:ffff:0a01:0909",
      "::ffff:10.1.200.1",
      "64:ff9b::a01:101", // NAT64 of 10.1.1.1
      "2002:a01:909::1", // 6to4 of 10.1.9.9
    ])
      assert.equal(networkPrefix(mapped), ten1, mapped);
    assert.notEqual(networkPrefix("::ffff:a02:909"), ten1, "10.2.9.9 is another /16");
    assert.equal(networkPrefix("2001:db8::1"), networkPrefix("2001:0db8:0:0:0:0:0:2"));
    assert.equal(networkPrefix("2001:db8:0:0:1::"), networkPrefix("2001:db8::"));
    assert.notEqual(networkPrefix("::1"), ten1);
    assert.equal(networkPrefix("localhost"), "name:localhost");
  });

  it("names the conflict between two relays", () => {
    const rules = { region: true, prefix: true, operator: true };
    assert.equal(
      conflict(relayEntry("a", "10.0.0.1", { region: "DE" }), relayEntry("b", "11.0.0.1", { region: "DE" }), rules),
      "region",
    );
    assert.equal(conflict(relayEntry("a", "10.0.0.1"), relayEntry("b", "10.0.9.9"), rules), "prefix");
    assert.equal(
      conflict(relayEntry("a", "10.1.2.3"), relayEntry("b", "[::ffff:a01:909]"), rules),
      "prefix",
      "a hex-mapped IPv6 address is its IPv4 /16",
    );
    assert.equal(
      conflict(relayEntry("a", "2001:db8::1"), relayEntry("b", "2001:db8:1::1"), rules),
      "prefix",
      "IPv6 addresses in one /32",
    );
    const op = "0x00000000000000000000000000000000000000aa" as const;
    assert.equal(
      conflict(relayEntry("a", "10.0.0.1", { operator: op }), relayEntry("b", "11.0.0.1", { operator: op }), rules),
      "operator",
    );
    assert.equal(
      conflict(relayEntry("a", "10.0.0.1", { region: "DE" }), relayEntry("b", "11.0.0.1", { region: "FR" }), rules),
      undefined,
    );
  });
});

describe("mesh plan: paths", () => {
  it("never puts two hops in one region, /16, /32 or operator (1,000 draws over a crowded directory)", () => {
    const opA = "0x00000000000000000000000000000000000000aa" as const;
    const opB = "0x00000000000000000000000000000000000000bb" as const;
    const relays = [
      // Same /16 as each other, different regions.
      relayEntry("v4-a", "10.1.0.1", { region: "DE" }),
      relayEntry("v4-b", "10.1.77.1", { region: "FR", exit: true }),
      // Same /32 (IPv6), different regions.
      relayEntry("v6-a", "2001:db8:1::1", { region: "NL" }),
      relayEntry("v6-b", "2001:db8:2::1", { region: "SE", exit: true }),
      // Same region, different networks.
      relayEntry("de-1", "20.0.0.1", { region: "DE" }),
      relayEntry("de-2", "21.0.0.1", { region: "DE", exit: true }),
      // Same operator, different regions and networks.
      relayEntry("op-1", "30.0.0.1", { region: "US", operator: opA }),
      relayEntry("op-2", "31.0.0.1", { region: "CA", operator: opA, exit: true }),
      relayEntry("op-3", "32.0.0.1", { region: "JP", operator: opB }),
      relayEntry("lone", "40.0.0.1", { region: "BR" }),
    ].map((e) => ok(e));
    const random = seeded(1);
    const seen = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const path = planPath(relays, { hops: 3, random });
      assert.equal(path.length, 3);
      assert.equal(path[2]!.exit, true, "the last hop is an exit");
      assertDiverse(path);
      for (const r of path) seen.add(r.name);
    }
    assert.ok(seen.size >= 9, `load spreads over the relays (used ${seen.size} of 10)`);
  });

  it("refuses a path that cannot be diverse instead of relaxing the rules", () => {
    const relays = [
      relayEntry("a", "10.1.0.1", { region: "DE" }),
      relayEntry("b", "10.1.0.2", { region: "FR" }),
      relayEntry("c", "10.1.0.3", { region: "NL", exit: true }),
    ].map((e) => ok(e));
    assert.throws(() => planPath(relays, { hops: 3, random: seeded(2) }), PlanError);
    // With the prefix rule off (a local test network on one host), the same relays make a path.
    const path = planPath(relays, { hops: 3, random: seeded(2), diversity: { prefix: false } });
    assert.deepEqual(new Set(path.map((r) => r.name)), new Set(["a", "b", "c"]));
  });

  it("never chooses a dead, frozen or avoided relay, and prefers fast healthy ones", () => {
    const fast = ok(relayEntry("fast", "10.0.0.1", { region: "DE" }), 10);
    const slow = ok(relayEntry("slow", "11.0.0.1", { region: "FR" }), 400);
    const sick = ok(relayEntry("sick", "12.0.0.1", { region: "NL" }), 10, 0.1);
    const dead: Candidate = { ...ok(relayEntry("dead", "13.0.0.1", { region: "SE" }), 5), state: "dead" };
    const frozen: Candidate = { ...ok(relayEntry("frozen", "14.0.0.1", { region: "PL" }), 5), state: "frozen" };
    const avoided = ok(relayEntry("avoided", "15.0.0.1", { region: "IT" }), 5);
    const exit = ok(relayEntry("exit", "16.0.0.1", { region: "US", exit: true }), 10);
    const random = seeded(3);
    const counts = new Map<string, number>();
    for (let i = 0; i < 500; i++) {
      const [first] = planPath([fast, slow, sick, dead, frozen, avoided, exit], {
        hops: 2,
        random,
        avoid: new Set(["avoided"]),
      });
      counts.set(first!.name, (counts.get(first!.name) ?? 0) + 1);
    }
    for (const never of ["dead", "frozen", "avoided"]) assert.equal(counts.get(never) ?? 0, 0, never);
    assert.ok((counts.get("fast") ?? 0) > 400, `fast chosen ${counts.get("fast")} / 500`);
    assert.equal(counts.get("slow") ?? 0, 0, "a relay far below the best score is not among the good ones");
    assert.equal(counts.get("sick") ?? 0, 0, "low health scores low");
  });

  it("puts exits only last while relays that are not exits can fill the other hops (1,000 draws)", () => {
    const relays = [
      relayEntry("m-1", "10.0.0.1", { region: "DE" }),
      relayEntry("m-2", "11.0.0.1", { region: "FR" }),
      relayEntry("m-3", "12.0.0.1", { region: "NL" }),
      relayEntry("m-4", "13.0.0.1", { region: "SE" }),
      // Exits, faster than the others: they would win the middle draws if they were allowed there.
      ...["US", "CA", "JP", "BR"].map((region, i) => relayEntry(`x-${i}`, `${20 + i}.0.0.1`, { region, exit: true })),
    ].map((e) => ok(e, e.exit ? 5 : 40));
    const random = seeded(7);
    for (let i = 0; i < 1_000; i++) {
      const path = planPath(relays, { hops: 3, random });
      assert.equal(path[2]!.exit, true);
      assert.deepEqual(
        path.slice(0, -1).filter((r) => r.exit),
        [],
        `draw ${i}: ${path.map((r) => r.name).join(" > ")}`,
      );
      assertDiverse(path);
    }
    // Non-exits that cannot make a diverse path (one region) leave the other hops to exits.
    const crowded = [
      relayEntry("m-1", "10.0.0.1", { region: "DE" }),
      relayEntry("m-2", "11.0.0.1", { region: "DE" }),
      relayEntry("x-1", "20.0.0.1", { region: "US", exit: true }),
      relayEntry("x-2", "21.0.0.1", { region: "CA", exit: true }),
    ].map((e) => ok(e));
    const path = planPath(crowded, { hops: 3, random });
    assert.equal(path.filter((r) => r.exit).length, 2, "an exit takes a middle hop when it must");
    assertDiverse(path);
    // A network of exits only still makes paths.
    const onlyExits = ["US", "CA", "JP"].map((region, i) =>
      ok(relayEntry(`x-${i}`, `${20 + i}.0.0.1`, { region, exit: true })),
    );
    assert.equal(planPath(onlyExits, { hops: 3, random }).length, 3);
  });

  it("needs an exit", () => {
    assert.throws(
      () => planPath([ok(relayEntry("a", "10.0.0.1"))], { hops: 1, random: Math.random }),
      /no usable exit/,
    );
  });
});

describe("mesh plan: standby circuits", () => {
  it("keeps one standby per active class, disjoint from its active circuit, none for idle classes", () => {
    const now = 1_000_000;
    const actions = planStandbys(
      [
        { isolation: "a", lastUsed: now - 1_000, active: ["r1", "r2", "r3"] },
        {
          isolation: "b",
          lastUsed: now - 1_000,
          active: ["r4", "r5", "r6"],
          standby: { path: ["r7", "r8", "r9"], ready: true },
        },
        {
          isolation: "c",
          lastUsed: now - 1_000,
          active: ["r1", "r5", "r9"],
          standby: { path: ["r9", "r2", "r3"], ready: true },
        },
        { isolation: "idle", lastUsed: now - 3_600_000, active: ["r1"], standby: { path: ["r2"], ready: true } },
      ],
      now,
      { suspects: new Set(["r8x"]) },
    );
    const of = (iso: string) => actions.filter((a) => a.isolation === iso).map((a) => a.kind);
    assert.deepEqual(of("a"), ["build-standby"]);
    const buildA = actions.find((a) => a.isolation === "a" && a.kind === "build-standby");
    assert.ok(buildA && buildA.kind === "build-standby" && ["r1", "r2", "r3", "r8x"].every((n) => buildA.avoid.has(n)));
    assert.deepEqual(of("b"), [], "a good standby is kept");
    assert.deepEqual(
      of("c"),
      ["drop-standby", "build-standby"],
      "a standby sharing r9 with the active circuit is replaced",
    );
    assert.deepEqual(of("idle"), ["drop-standby"]);
  });
});

describe("mesh plan: folder entries the diversity rules cannot check", () => {
  it("warns once per relay without a region or operator while the rule is on, not when it is off", async () => {
    await initCrypto();
    const dir = mkdtempSync(join(tmpdir(), "x0t-plan-folder-"));
    try {
      const write = (name: string, extra: { region?: string; operator?: string }) =>
        writeFileSync(
          join(dir, `${name}.json`),
          JSON.stringify(
            descriptorOf({
              name,
              host: "127.0.0.1",
              port: 9001,
              exit: true,
              keys: publicKeysOf(generateStaticKeys()),
              ...extra,
            }),
          ),
        );
      write("complete", { region: "DE", operator: `0x${"a".repeat(40)}` });
      write("no-region", { operator: `0x${"b".repeat(40)}` });
      write("bare", {});
      const lines: { msg: string; relay: string }[] = [];
      const log = createLogger({ write: (line) => lines.push(JSON.parse(line) as { msg: string; relay: string }) });
      const read = folderDirectory(dir, undefined, log);
      for (let i = 0; i < 3; i++) assert.equal(read().length, 3, "every relay is still used");
      assert.deepEqual(
        lines.map((l) => `${l.relay}: ${/no (\w+)/.exec(l.msg)?.[1]}`).sort(),
        ["bare: operator", "bare: region", "no-region: region"],
        "one warning per relay and missing field, however often the folder is read",
      );
      lines.length = 0;
      folderDirectory(dir, { region: false, operator: false }, log)();
      assert.deepEqual(lines, [], "a rule that is off checks nothing, so nothing to warn of");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("route choice: the last resort of an active circuit", () => {
  const three = [
    relayEntry("g", "127.0.0.1", { region: "DE" }),
    relayEntry("m", "127.0.0.2", { region: "FR" }),
    relayEntry("x", "127.0.0.3", { region: "NL", exit: true }),
  ];
  const frozen = nodeId(three[1]!);
  const nodeInfo = (id: string): NodeInfo => ({ health: 1, rttMs: 5, ...(id === frozen ? { state: "frozen" } : {}) });

  it("takes a relay judged frozen when no path exists without it; a standby never does", () => {
    const base = { hops: 3, avoid: new Set<string>(), suspects: new Set([frozen]), nodeInfo };
    const path = chooseRoute(three, { ...base, role: "active" });
    // Every relay, the frozen one included; the exit last (the other hops' order is drawn).
    assert.deepEqual(path.map((r) => r.name).sort(), ["g", "m", "x"]);
    assert.equal(path.at(-1)?.name, "x");
    assert.throws(() => chooseRoute(three, { ...base, role: "standby" }), /./);
    // With a way around it, the frozen relay stays out.
    const four = [...three, relayEntry("n", "127.0.0.4", { region: "SE" })];
    for (let i = 0; i < 50; i++)
      assert.ok(!chooseRoute(four, { ...base, role: "active" }).some((r) => nodeId(r) === frozen));
  });
});

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { type Address, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  SnapshotError,
  createSnapshotClient,
  proposalTiming,
  snapshotJs,
} from "../../relayer/src/governance/snapshot.ts";
import { ScoreError, scoreVoters } from "../../relayer/src/governance/score.ts";
import { SPACE_VOTING, buildSpace } from "../../relayer/src/governance/space.ts";
import { isqrt, tallySqrt } from "../../relayer/src/governance/tally.ts";
import { connect } from "../helpers/protocol.ts";
import { startFakeSequencer } from "./fake-sequencer.ts";
import { deployGoverned, governance } from "./fixture.ts";

const X0T = 10n ** 18n;
const RULES = { ...SPACE_VOTING, type: "single-choice" };

describe("Snapshot space", () => {
  it("deploy/snapshot/space.json is valid for Snapshot and is what buildSpace makes", async () => {
    const space = JSON.parse(await readFile("deploy/snapshot/space.json", "utf8")) as ReturnType<typeof buildSpace>;
    assert.equal(snapshotJs.utils.validateSchema(snapshotJs.schemas.space, space), true);
    const voterRegistry = space.strategies[0]!.params.operands[0]!.strategy.params.address;
    const councilSafe = space.treasuries[0]!.address;
    assert.deepEqual(space, JSON.parse(JSON.stringify(buildSpace({ voterRegistry, councilSafe }))));
    assert.deepEqual(space.admins, [], "no admin can switch the Sybil-gated strategy off");
    assert.equal(space.network, "84532");
    assert.equal(space.strategies[0]!.name, "math");
    assert.equal(space.strategies[0]!.params.operation, "square-root");
    const inner = space.strategies[0]!.params.operands[0]!.strategy;
    assert.equal(inner.name, "contract-call", "the registry's snapshotVotes, not erc20-votes");
    assert.equal(inner.params.methodABI.name, "snapshotVotes");
    assert.equal(space.voting.quorum, 20_000, "sqrt(400,000,000 X0T): no single genesis allocation");
    assert.notEqual(space.voting.type, "quadratic", "Snapshot's quadratic type is not sqrt(tokens)");
  });

  it("the schema check can fail: a space without strategies is refused", () => {
    const broken: Record<string, unknown> = {
      ...buildSpace({
        voterRegistry: "0x0000000000000000000000000000000000000001",
        councilSafe: "0x0000000000000000000000000000000000000002",
      }),
    };
    delete broken.strategies;
    assert.notEqual(snapshotJs.utils.validateSchema(snapshotJs.schemas.space, broken), true);
  });
});

describe("Snapshot client against a local sequencer that checks signatures like the hub", () => {
  let hub: Awaited<ReturnType<typeof startFakeSequencer>>;
  before(async () => {
    hub = await startFakeSequencer({ voting: RULES });
  });
  after(() => hub.close());

  const voters = [1_000_000n, 250_000n, 40_000n, 30_000n].map((tokens) => ({
    account: privateKeyToAccount(generatePrivateKey()),
    votes: tokens * X0T,
  }));

  it("creates a proposal and casts votes signed by viem accounts; tallies them with sqrt weights", async () => {
    const proposer = createSnapshotClient({ account: voters[0]!.account, hubUrl: hub.url, rules: RULES });
    const proposal = await proposer.propose({
      space: "x0tta6bl4.eth",
      title: "Grant 50,000 X0T to the web team",
      body: "…",
      choices: ["For", "Against", "Abstain"],
      snapshot: 123,
    });
    const signed = hub.recorded.find((r) => r.id === proposal.id)!.message;
    assert.equal(Number(signed.start), Number(signed.timestamp) + 3600, "start = signed timestamp + 1 h delay");
    assert.equal(Number(signed.end) - Number(signed.start), 5 * 24 * 3600, "end = start + 5 days");
    assert.match(proposal.id, /^0x[0-9a-f]{64}$/);
    const choices = [2, 1, 1, 1];
    for (const [i, v] of voters.entries()) {
      const receipt = await createSnapshotClient({ account: v.account, hubUrl: hub.url }).vote({
        space: "x0tta6bl4.eth",
        proposal: proposal.id,
        choice: choices[i]!,
      });
      assert.ok(receipt.id);
    }
    const cast = hub.recorded
      .filter((r) => r.kind === "vote")
      .map((r) => ({
        voter: r.address,
        choice: Number(r.message.choice),
        votes: voters.find((v) => v.account.address === r.address)!.votes,
      }));
    const tally = tallySqrt(cast, 3);
    // One whale (1,000 weight) loses to three smaller holders (500 + 200 + 173.2) under sqrt.
    assert.deepEqual(
      tally.scores.map((s) => Math.round(s * 10) / 10),
      [873.2, 1000, 0],
    );
    assert.equal(tally.winner, 2);
    const linear = [0n, 0n, 0n];
    for (const c of cast) linear[c.choice - 1]! += c.votes;
    assert.ok(linear[1]! > linear[0]!, "by token count the whale would have won");
  });

  it("is refused when the signature does not match the sender", async () => {
    const honest = createSnapshotClient({ account: voters[1]!.account, hubUrl: hub.url });
    const proposal = hub.recorded.find((r) => r.kind === "proposal")!.id;
    // An adapter that signs with one key but claims another address.
    const liar = createSnapshotClient({
      account: { ...voters[2]!.account, address: voters[3]!.account.address },
      hubUrl: hub.url,
    });
    await assert.rejects(
      liar.vote({ space: "x0tta6bl4.eth", proposal, choice: 1 }),
      (e: unknown) => e instanceof SnapshotError && /wrong signature/.test(e.message),
    );
    await assert.rejects(honest.vote({ space: "x0tta6bl4.eth", proposal: "0xdead", choice: 1 }), /unknown proposal/);
  });
});

describe("the hub's proposal timing rules (delay 3,600 s, period 432,000 s, single-choice)", () => {
  const account = privateKeyToAccount(generatePrivateKey());
  const base = { space: "x0tta6bl4.eth", title: "t", body: "b", choices: ["For", "Against"], snapshot: 1 };

  it("the client refuses, before sending, a start 1 s off the delay, a 1-day period, another type, a past end", () => {
    const now = 1_800_000_000;
    assert.deepEqual(proposalTiming({ ...base, timestamp: now }, RULES, now), {
      timestamp: now,
      start: now + 3600,
      end: now + 3600 + 432_000,
      type: "single-choice",
    });
    assert.throws(
      () => proposalTiming({ ...base, timestamp: now, start: now + 3601 }, RULES, now),
      /invalid voting delay/,
    );
    assert.throws(
      () => proposalTiming({ ...base, timestamp: now, start: now + 3600, end: now + 3600 + 86_400 }, RULES, now),
      /invalid voting period/,
    );
    assert.throws(() => proposalTiming({ ...base, timestamp: now, type: "basic" }, RULES, now), /invalid voting type/);
    assert.throws(
      () => proposalTiming({ ...base, start: now - 10, end: now - 5 }, {}, now),
      /end date must be in the future/,
    );
    assert.throws(() => proposalTiming({ ...base }, {}, now), /`end` is required/);
  });

  it("the local sequencer refuses what the hub refuses: a client that ignores the rules is turned away", async () => {
    const hub = await startFakeSequencer({ voting: RULES });
    try {
      // A client that does not know the space's rules signs start = now, end = now + 1 h.
      const naive = createSnapshotClient({ account, hubUrl: hub.url });
      const now = Math.floor(Date.now() / 1000);
      // (The signed timestamp is pinned to `now`, so a second ticking by cannot change the outcome.)
      const at = { ...base, timestamp: now };
      await assert.rejects(naive.propose({ ...at, start: now, end: now + 3600 }), /invalid voting delay/);
      await assert.rejects(naive.propose({ ...at, start: now + 3600, end: now + 7200 }), /invalid voting period/);
      await assert.rejects(
        naive.propose({ ...at, start: now + 3600, end: now + 3600 + 432_000, type: "basic" }),
        /invalid voting type/,
      );
      await assert.rejects(naive.propose({ ...at, start: now - 20, end: now - 10 }), /end date must be in the future/);
      assert.equal(hub.recorded.length, 0);
      const receipt = await createSnapshotClient({ account, hubUrl: hub.url, rules: RULES }).propose(base);
      assert.ok(receipt.id);
    } finally {
      await hub.close();
    }
  });
});

describe("Snapshot scoring path against the chain: the 100-address split", () => {
  it("1,000,000 X0T split over 100 unregistered addresses scores 0 (erc20-votes alone: 10x one registered address)", async () => {
    const connection = await connect();
    const sys = await deployGoverned(connection);
    const { fund } = governance(connection, sys);
    const publicClient = await connection.viem.getPublicClient();
    const whale = sys.wallets[7]!;
    await fund(whale, 1_000_000n * X0T);
    await sys.registerHuman(whale);
    // The same whale moves 980,000 X0T into 100 fresh addresses (9,702 each after the burn), each self-delegated:
    // impersonated here, as the whale holds their keys.
    const sybils = Array.from({ length: 100 }, (_, i) => toHex(BigInt(0x5b11_0000 + i), { size: 20 }) as Address);
    await connection.provider.request({ method: "hardhat_impersonateAccount", params: [whale.account.address] });
    for (const s of sybils) {
      await sys.token.write.transfer([s, 9_800n * X0T], { account: whale.account });
      await connection.provider.request({ method: "hardhat_impersonateAccount", params: [s] });
      await connection.networkHelpers.setBalance(s, 10n ** 17n);
      await sys.token.write.delegate([s], { account: s });
    }
    await connection.networkHelpers.mine(1);
    const block = await publicClient.getBlockNumber();
    const space = buildSpace({ voterRegistry: sys.voters.address, councilSafe: sys.safeAddress });
    const gated = await scoreVoters(publicClient, space.strategies, sybils, block);
    const total = [...gated.values()].reduce((a, b) => a + b, 0);
    assert.equal(total, 0, "unregistered addresses have no score");
    // The whale's own registered address scores sqrt of what it kept.
    const [whaleScore] = (await scoreVoters(publicClient, space.strategies, [whale.account.address], block)).values();
    const kept = Number((await sys.token.read.getVotes([whale.account.address])) / X0T);
    assert.ok(Math.abs(whaleScore! - Math.sqrt(kept)) < 1e-6);
    // Counterfactual: the old space read erc20-votes; the split scores 100 x sqrt(9,702) = 9,850,
    // ~10x the 995 of the whole 990,000 X0T in one registered address.
    const old = [
      {
        name: "math",
        params: {
          operation: "square-root",
          operands: [
            {
              type: "strategy",
              strategy: { name: "erc20-votes", params: { address: sys.token.address, decimals: 18 } },
            },
          ],
        },
      },
    ];
    const ungated = await scoreVoters(publicClient, old, sybils, block);
    const split = [...ungated.values()].reduce((a, b) => a + b, 0);
    console.log(
      `      snapshot scores: 100 sybils ${total} (gated) vs ${split.toFixed(0)} (erc20-votes); whale ${whaleScore!.toFixed(1)}`,
    );
    assert.ok(split > 9.8 * Math.sqrt(990_000), "without the gate the split scores ~10x");
    await assert.rejects(scoreVoters(publicClient, [{ name: "whitelist", params: {} }], sybils, block), ScoreError);
    await assert.rejects(
      scoreVoters(publicClient, [{ name: "math", params: { operation: "min", operands: [] } }], sybils, block),
      ScoreError,
    );
  });
});

describe("local tally", () => {
  it("counts each voter's last vote, rounds sqrt down, and reports ties", () => {
    assert.equal(isqrt(10n ** 24n), 10n ** 12n);
    assert.equal(isqrt(99n), 9n);
    const t = tallySqrt(
      [
        { voter: "0xA", choice: 1, votes: 4n * X0T },
        { voter: "0xa", choice: 2, votes: 4n * X0T },
        { voter: "0xB", choice: 1, votes: 4n * X0T },
      ],
      2,
    );
    assert.deepEqual(t.scores, [2, 2]);
    assert.equal(t.winner, 0);
    assert.equal(t.voters, 2);
    assert.throws(() => tallySqrt([{ voter: "0xA", choice: 3, votes: 1n }], 2), /invalid choice/);
  });
});

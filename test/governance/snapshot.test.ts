import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { SnapshotError, createSnapshotClient, snapshotJs } from "../../relayer/src/governance/snapshot.ts";
import { buildSpace } from "../../relayer/src/governance/space.ts";
import { isqrt, tallySqrt } from "../../relayer/src/governance/tally.ts";
import { startFakeSequencer } from "./fake-sequencer.ts";

const X0T = 10n ** 18n;

describe("Snapshot space", () => {
  it("deploy/snapshot/space.json is valid for Snapshot and is what buildSpace makes", async () => {
    const space = JSON.parse(await readFile("deploy/snapshot/space.json", "utf8")) as ReturnType<typeof buildSpace>;
    assert.equal(snapshotJs.utils.validateSchema(snapshotJs.schemas.space, space), true);
    const token = space.strategies[0]!.params.operands[0]!.strategy.params.address;
    assert.deepEqual(space, JSON.parse(JSON.stringify(buildSpace({ token, councilSafe: space.admins[0]! }))));
    assert.equal(space.network, "84532");
    assert.equal(space.strategies[0]!.name, "math");
    assert.equal(space.strategies[0]!.params.operation, "square-root");
    assert.equal(space.strategies[0]!.params.operands[0]!.strategy.name, "erc20-votes");
    assert.notEqual(space.voting.type, "quadratic", "Snapshot's quadratic type is not sqrt(tokens)");
  });

  it("the schema check can fail: a space without strategies is refused", () => {
    const broken: Record<string, unknown> = {
      ...buildSpace({
        token: "0x0000000000000000000000000000000000000001",
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
    hub = await startFakeSequencer();
  });
  after(() => hub.close());

  const voters = [1_000_000n, 250_000n, 40_000n, 30_000n].map((tokens) => ({
    account: privateKeyToAccount(generatePrivateKey()),
    votes: tokens * X0T,
  }));

  it("creates a proposal and casts votes signed by viem accounts; tallies them with sqrt weights", async () => {
    const now = Math.floor(Date.now() / 1000);
    const proposer = createSnapshotClient({ account: voters[0]!.account, hubUrl: hub.url });
    const proposal = await proposer.propose({
      space: "x0tta6bl4.eth",
      title: "Grant 50,000 X0T to the web team",
      body: "…",
      choices: ["For", "Against", "Abstain"],
      start: now,
      end: now + 3600,
      snapshot: 123,
    });
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

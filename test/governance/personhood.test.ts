/**
 * The Sybil gate on its own: EASPersonhoodSource against the real EAS at the OP-stack predeploy
 * (the test plays the attester), and the VoterRegistry's permissionless register / prune / leave,
 * its exclusions, its sources and the checkpoint a proposal's snapshot reads.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Hex, encodeAbiParameters, keccak256, stringToHex, zeroAddress } from "viem";
import { BASE_SEPOLIA_EAS } from "../../deploy/ignition/modules/Governance.js";
import { VoterError, findAttestation, registerVoter } from "../../relayer/src/governance/voters.ts";
import { connect } from "../helpers/protocol.ts";
import { X0T, attest, deployGoverned, governance, installEASSchema, reverts, revoke } from "./fixture.ts";

const connection = await connect();
const { networkHelpers } = connection;
const sys = await deployGoverned(connection);
const { propose, fund } = governance(connection, sys);
const [, , , , alice, bob, carol, dave, erin] = sys.wallets;
if (!alice || !bob || !carol || !dave || !erin) throw new Error("need 9 accounts");
const source = sys.personhood.address;
const uidOf = async (w: typeof alice) => (await sys.voters.read.voterOf([w.account.address]))[1];

describe("EASPersonhoodSource: what an attestation must be", () => {
  it("reads the configured EAS, schema and attester", async () => {
    assert.equal((await sys.personhood.read.eas()).toLowerCase(), BASE_SEPOLIA_EAS.eas.toLowerCase());
    assert.equal(await sys.personhood.read.schema(), sys.schema);
    assert.equal((await sys.personhood.read.attester()).toLowerCase(), sys.attester.account.address.toLowerCase());
  });

  it("refuses a malformed proof, an unknown uid, another schema, another attester, another recipient", async () => {
    const register = (proof: Hex, by = alice) => sys.voters.write.register([source, proof], { account: by.account });
    await reverts(register("0x1234"), "MalformedProof");
    await reverts(register(keccak256(stringToHex("nothing"))), "UnknownAttestation");
    const otherSchema = await installEASSchema(connection, sys.deployer, "bool verifiedCountry");
    const wrongSchema = await attest(connection, sys.attester, alice.account.address, { schema: otherSchema });
    await reverts(register(wrongSchema), "WrongSchema");
    const wrongAttester = await attest(connection, bob, alice.account.address, { schema: sys.schema });
    await reverts(register(wrongAttester), "WrongAttester");
    const toBob = await attest(connection, sys.attester, bob.account.address, { schema: sys.schema });
    await reverts(register(toBob), "WrongRecipient");
  });

  it("refuses a revoked, an expired and a `false` attestation", async () => {
    const revoked = await attest(connection, sys.attester, alice.account.address, { schema: sys.schema });
    await revoke(connection, sys.attester, sys.schema, revoked);
    await reverts(sys.voters.write.register([source, revoked], { account: alice.account }), "Revoked");
    const now = BigInt(await networkHelpers.time.latest());
    const expiring = await attest(connection, sys.attester, alice.account.address, {
      schema: sys.schema,
      expirationTime: now + 100n,
    });
    await networkHelpers.time.increase(200);
    await reverts(sys.voters.write.register([source, expiring], { account: alice.account }), "Expired");
    const no = await attest(connection, sys.attester, alice.account.address, { schema: sys.schema, verified: false });
    await reverts(sys.voters.write.register([source, no], { account: alice.account }), "NotVerified");
    assert.equal(await sys.personhood.read.isValid([alice.account.address, no]), false);
  });
});

describe("VoterRegistry: self-registration, pruning, leaving", () => {
  it("registers the caller once; its uid is its identity; snapshotVotes is its votes only when registered", async () => {
    await fund(alice, 10_000n * X0T);
    assert.equal(await sys.voters.read.snapshotVotes([alice.account.address]), 0n, "not registered: 0");
    const { uid } = await sys.registerHuman(alice);
    assert.equal(await sys.voters.read.isRegistered([alice.account.address]), true);
    assert.equal(await sys.voters.read.snapshotVotes([alice.account.address]), 9_900n * X0T);
    const key = keccak256(encodeAbiParameters([{ type: "address" }, { type: "bytes32" }], [source, uid]));
    assert.equal((await sys.voters.read.holderOf([key])).toLowerCase(), alice.account.address.toLowerCase());
    await reverts(sys.voters.write.register([source, uid], { account: alice.account }), "AlreadyRegistered");
    await reverts(sys.voters.write.register([zeroAddress, uid], { account: bob.account }), "UnknownSource");
    assert.equal(await sys.voters.read.voterCount(), 1n);
  });

  it("prunes an expired voter (anyone may), lets a voter leave, and frees the identity", async () => {
    const now = BigInt(await networkHelpers.time.latest());
    const uid = await attest(connection, sys.attester, bob.account.address, {
      schema: sys.schema,
      expirationTime: now + 1_000n,
    });
    await sys.voters.write.register([source, uid], { account: bob.account });
    await reverts(sys.voters.write.prune([bob.account.address], { account: carol.account }), "StillValid");
    await networkHelpers.time.increase(1_001);
    await sys.voters.write.prune([bob.account.address], { account: carol.account });
    assert.equal(await sys.voters.read.isRegistered([bob.account.address]), false);
    await reverts(sys.voters.write.prune([bob.account.address]), "NotRegistered");

    const { uid: carolUid } = await sys.registerHuman(carol);
    await sys.voters.write.leave({ account: carol.account });
    await reverts(sys.voters.write.leave({ account: carol.account }), "NotRegistered");
    // The same attestation registers the same address again after leaving.
    await sys.voters.write.register([source, carolUid], { account: carol.account });
    assert.equal(await uidOf(carol), carolUid);
  });

  it("the DAO (its timelock) disables a source, whose voters become prunable, and excludes an address for good", async () => {
    await sys.registerHuman(dave);
    await sys.registerHuman(erin);
    const timelock = sys.timelock.address;
    await connection.provider.request({ method: "hardhat_impersonateAccount", params: [timelock] });
    await networkHelpers.setBalance(timelock, 10n ** 18n);
    await reverts(sys.voters.write.exclude([erin.account.address], { account: dave.account }), "AccessControl");
    await reverts(sys.voters.write.exclude([zeroAddress], { account: timelock }), "ZeroAddress");
    await reverts(sys.voters.write.setSource([zeroAddress, true], { account: timelock }), "ZeroAddress");
    await sys.voters.write.exclude([erin.account.address], { account: timelock });
    assert.equal(await sys.voters.read.isRegistered([erin.account.address]), false, "excluding removes");
    await reverts(sys.registerHuman(erin), "ExcludedAccount");
    await sys.voters.write.setSource([source, false], { account: timelock });
    await reverts(sys.registerHuman(alice), "UnknownSource");
    await sys.voters.write.prune([dave.account.address], { account: alice.account });
    await sys.voters.write.setSource([source, true], { account: timelock });
    await connection.provider.request({ method: "hardhat_stopImpersonatingAccount", params: [timelock] });
    assert.equal(await sys.voters.read.isRegistered([dave.account.address]), false);
  });

  it("a proposal counts the registrations at its snapshot, not later ones", async () => {
    await fund(bob, 2_000_000n * X0T);
    await sys.registerHuman(bob);
    await networkHelpers.mine(1);
    const p = await propose([sys.credit.address], ["0x"], "snapshot check", bob);
    const snapshot = await sys.governor.read.proposalSnapshot([p.id]);
    await networkHelpers.time.increase(20);
    assert.equal(await sys.voters.read.wasRegistered([dave.account.address, snapshot]), false);
    await sys.registerHuman(dave);
    assert.equal(await sys.governor.read.getVotes([dave.account.address, snapshot]), 0n);
    const now = BigInt(await networkHelpers.time.latest());
    await reverts(sys.voters.read.wasRegistered([bob.account.address, now + 10n]), "FutureLookup");
  });
});

describe("relayer/src/governance/voters.ts: finding one's attestation and registering with it", () => {
  it("skips a revoked attestation, registers with the valid one, and refuses a second time or without one", async () => {
    const publicClient = await connection.viem.getPublicClient();
    const [, , , , , , , , , , , , frank, grace] = sys.wallets;
    const query = { eas: BASE_SEPOLIA_EAS.eas, schema: sys.schema, attester: sys.attester.account.address };
    const old = await attest(connection, sys.attester, frank!.account.address, { schema: sys.schema });
    const current = await attest(connection, sys.attester, frank!.account.address, { schema: sys.schema });
    await revoke(connection, sys.attester, sys.schema, current);
    assert.equal(await findAttestation(publicClient, { ...query, recipient: frank!.account.address }), old);
    const args = { registry: sys.voters.address, source, ...query };
    const { hash, uid } = await registerVoter(publicClient, frank!, args);
    await publicClient.waitForTransactionReceipt({ hash });
    assert.equal(uid, old);
    assert.equal(await sys.voters.read.isRegistered([frank!.account.address]), true);
    await assert.rejects(
      registerVoter(publicClient, frank!, args),
      (e: unknown) => e instanceof VoterError && /already/.test(e.message),
    );
    await assert.rejects(registerVoter(publicClient, grace!, args), /no valid attestation/);
  });
});

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { createPrivateKey, createPublicKey, decapsulate, encapsulate } from "node:crypto";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { createMlKem768 } from "mlkem";
import { AuthenticationError, CellOpener, CellSealer } from "../../relayer/src/crypto/cipher.ts";
import {
  HELLO_BYTES,
  HandshakeError,
  REPLY_BYTES,
  respondToHandshake,
  startClientHandshake,
} from "../../relayer/src/crypto/handshake.ts";
import {
  generateStaticKeys,
  initCrypto,
  mlKemDecapsulate,
  mlKemEncapsulate,
  mlKemFromSeed,
  publicKeysOf,
  staticKeysFromSecrets,
  verifyPublicKeys,
} from "../../relayer/src/crypto/keys.ts";

before(() => initCrypto());

describe("hybrid handshake", () => {
  it("gives both sides the same two directional keys, and sizes match the spec", () => {
    const relay = generateStaticKeys();
    const client = startClientHandshake(publicKeysOf(relay));
    assert.equal(client.hello.length, HELLO_BYTES);
    const answer = respondToHandshake(relay, client.hello);
    assert.equal(answer.reply.length, REPLY_BYTES);
    const keys = client.finish(answer.reply);
    assert.deepEqual(keys.forward, answer.keys.forward);
    assert.deepEqual(keys.backward, answer.keys.backward);
    assert.notDeepEqual(keys.forward, keys.backward);
  });

  it("refuses a hello addressed to another relay", () => {
    const [a, b] = [generateStaticKeys(), generateStaticKeys()];
    const hello = startClientHandshake(publicKeysOf(a)).hello;
    assert.throws(() => respondToHandshake(b, hello), HandshakeError);
  });

  it("detects an impostor that answers with its own keys", () => {
    const [real, impostor] = [generateStaticKeys(), generateStaticKeys()];
    const client = startClientHandshake(publicKeysOf(real));
    const forged = Buffer.from(client.hello);
    impostor.keysHash.copy(forged, 1); // readdress the hello so the impostor accepts it
    const answer = respondToHandshake(impostor, forged);
    assert.throws(() => client.finish(answer.reply), /failed to authenticate/);
  });

  it("fails on any flipped bit of the reply and on a reused state", () => {
    const relay = generateStaticKeys();
    for (const offset of [0, 31, 32, 500, REPLY_BYTES - 1]) {
      const client = startClientHandshake(publicKeysOf(relay));
      const reply = Buffer.from(respondToHandshake(relay, client.hello).reply);
      reply[offset]! ^= 0x80;
      assert.throws(() => client.finish(reply), HandshakeError, `offset ${offset}`);
    }
    const client = startClientHandshake(publicKeysOf(relay));
    const { reply } = respondToHandshake(relay, client.hello);
    client.finish(reply);
    assert.throws(() => client.finish(reply), /already used/);
  });

  it("answers a replayed hello with fresh keys the replayer cannot reuse", () => {
    const relay = generateStaticKeys();
    const client = startClientHandshake(publicKeysOf(relay));
    const first = respondToHandshake(relay, client.hello);
    const replay = respondToHandshake(relay, client.hello);
    assert.notDeepEqual(first.keys.forward, replay.keys.forward);
    assert.notDeepEqual(first.reply, replay.reply);
  });

  it("rejects malformed hellos of every size and version", () => {
    const relay = generateStaticKeys();
    const good = startClientHandshake(publicKeysOf(relay)).hello;
    assert.throws(() => respondToHandshake(relay, good.subarray(1)), HandshakeError);
    assert.throws(() => respondToHandshake(relay, Buffer.concat([good, Buffer.of(0)])), HandshakeError);
    const badVersion = Buffer.from(good);
    badVersion[0] = 2;
    assert.throws(() => respondToHandshake(relay, badVersion), /version/);
  });
});

describe("static keys", () => {
  it("rebuild from their secrets to the same keysHash", () => {
    const keys = generateStaticKeys();
    const again = staticKeysFromSecrets(keys.secrets);
    assert.deepEqual(again.keysHash, keys.keysHash);
    assert.deepEqual(
      verifyPublicKeys(again.x25519.publicKey, again.mlkemPublic, keys.keysHash).keysHash,
      keys.keysHash,
    );
    assert.throws(() => verifyPublicKeys(again.x25519.publicKey, again.mlkemPublic, Buffer.alloc(32)), /do not match/);
  });

  it("native ML-KEM-768 (node:crypto) matches the mlkem package byte for byte, both ways", async () => {
    const js = await createMlKem768();
    for (const fill of [0, 7, 0xff]) {
      const seed = Buffer.alloc(64, fill);
      const native = mlKemFromSeed(seed);
      const [ek, dk] = js.deriveKeyPair(seed);
      assert.deepEqual(native.publicKey, Buffer.from(ek), "same seed, same encapsulation key");
      // mlkem encapsulates, node:crypto decapsulates …
      const [ct, ss] = js.encap(ek);
      assert.deepEqual(mlKemDecapsulate(native.privateKey, ct), Buffer.from(ss));
      // … and node:crypto encapsulates, mlkem decapsulates.
      const { ciphertext, secret } = mlKemEncapsulate(native.publicKey);
      assert.deepEqual(Buffer.from(js.decap(ciphertext, dk)), secret);
      // A tampered ciphertext gives an unrelated secret on both (implicit rejection), the same one.
      const bad = Buffer.from(ciphertext);
      bad[100]! ^= 1;
      assert.deepEqual(mlKemDecapsulate(native.privateKey, bad), Buffer.from(js.decap(bad, dk)));
      assert.notDeepEqual(mlKemDecapsulate(native.privateKey, bad), secret);
    }
  });

  it("imports a private key from its 64-byte seed as 86-byte PKCS#8, and @noble/post-quantum agrees", () => {
    const seed = Buffer.alloc(64, 3);
    const native = mlKemFromSeed(seed);
    const der = native.privateKey.export({ format: "der", type: "pkcs8" });
    assert.equal(der.length, 86);
    assert.deepEqual(der.subarray(22), seed, "the PKCS#8 holds only the FIPS 203 seed");
    const again = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
    const noble = ml_kem768.keygen(seed);
    assert.deepEqual(native.publicKey, Buffer.from(noble.publicKey));
    const spki = createPublicKey(again).export({ format: "der", type: "spki" });
    const { sharedKey, ciphertext } = encapsulate(createPublicKey({ key: spki, format: "der", type: "spki" }));
    assert.deepEqual(decapsulate(native.privateKey, ciphertext), sharedKey);
    assert.deepEqual(Buffer.from(ml_kem768.decapsulate(ciphertext, noble.secretKey)), sharedKey);
    assert.throws(() => mlKemDecapsulate(native.privateKey, ciphertext.subarray(1)), /bad length/);
    assert.throws(() => mlKemFromSeed(seed.subarray(1)), /64 bytes/);
  });

  it("matches the keysHash test vector of docs/protocol.md", () => {
    const keys = staticKeysFromSecrets({ x25519: Buffer.alloc(32, 1), mlkemSeed: Buffer.alloc(64, 2) });
    assert.equal(keys.keysHash.toString("hex"), VECTOR_KEYS_HASH);
  });
});

describe("cell cipher", () => {
  const key = Buffer.alloc(32, 9);

  it("round-trips, and matches the cell test vector", () => {
    const sealer = new CellSealer(key);
    const sealed = Buffer.concat(sealer.seal([Buffer.from("x0t"), Buffer.from(" cell")]));
    assert.equal(sealed.toString("hex"), VECTOR_CELL);
    assert.equal(new CellOpener(key).open(sealed).toString(), "x0t cell");
  });

  it("refuses a tampered, replayed or reordered cell", () => {
    const sealer = new CellSealer(key);
    const cells = [0, 1, 2].map((i) => Buffer.concat(sealer.seal([Buffer.from(`cell ${i}`)])));
    const tampered = Buffer.from(cells[0]!);
    tampered[2]! ^= 1;
    assert.throws(() => new CellOpener(key).open(tampered), AuthenticationError);
    const opener = new CellOpener(key);
    opener.open(cells[0]!);
    assert.throws(() => opener.open(cells[0]!), AuthenticationError, "replay");
    const reorder = new CellOpener(key);
    assert.throws(() => reorder.open(cells[1]!), AuthenticationError, "out of order");
  });

  it("ratchets the key every interval on both sides, and never reuses a nonce across it", () => {
    const sealer = new CellSealer(key, 4);
    const opener = new CellOpener(key, 4);
    const seen = new Set<string>();
    for (let i = 0; i < 13; i++) {
      const sealed = Buffer.concat(sealer.seal([Buffer.alloc(16)]));
      seen.add(sealed.toString("hex"));
      assert.equal(opener.open(sealed).length, 16);
    }
    assert.equal(sealer.generation, 3);
    assert.equal(seen.size, 13, "equal plaintexts never give equal ciphertexts");
    const stale = new CellOpener(key, 8);
    const other = new CellSealer(key, 4);
    for (let i = 0; i < 4; i++) stale.open(Buffer.concat(other.seal([Buffer.of(i)])));
    assert.throws(() => stale.open(Buffer.concat(other.seal([Buffer.of(4)]))), AuthenticationError);
  });
});

// Test vectors, also printed in docs/protocol.md.
const VECTOR_KEYS_HASH = "0e37bd5cb5195e280810bb7570eaf0fbc5d2a1f29bf2283e15748b4b3493e206";
const VECTOR_CELL = "9ef31104445a57e1e32fee9afac395f06b23a6d0b4641de1";

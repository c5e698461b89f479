import assert from "node:assert/strict";
import { before, beforeEach, describe, it } from "node:test";
import { type Address, getAddress, type Hex, type LocalAccount, parseSignature, zeroAddress, zeroHash } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  connect,
  deployProtocol,
  fund,
  keysHashOf,
  MIN_STAKE,
  type Protocol,
  region,
  registerRelayer,
  signerConsent,
  UNBONDING_DELAY,
  X0T,
} from "../helpers/protocol.js";

describe("RelayerRegistry", async () => {
  const connection = await connect();
  const { viem, networkHelpers } = connection;
  let p: Protocol;
  let restore: () => Promise<void>;

  before(async () => {
    p = await deployProtocol(connection);
    const snapshot = await networkHelpers.takeSnapshot();
    restore = () => snapshot.restore();
  });
  beforeEach(async () => restore());

  const op = () => p.wallets[2]!;
  const other = () => p.wallets[3]!;
  const signerAccounts = new Map<string, LocalAccount>();
  /** A fresh node signer's address; its consent is signed on demand by `consent`. */
  const signerAddress = (): Address => {
    const account = privateKeyToAccount(generatePrivateKey());
    signerAccounts.set(account.address, account);
    return account.address;
  };
  const consent = (signer: Address, operator = op()): Promise<Hex> => {
    const account = signerAccounts.get(signer);
    if (!account) throw new Error(`no key for signer ${signer}`);
    return signerConsent(p, account, operator.account.address);
  };

  async function approve(amount: bigint, wallet = op()) {
    await fund(p, wallet.account.address, amount);
    await p.token.write.approve([p.registry.address, amount], { account: wallet.account });
  }

  it("registers a node with its stake and publishes the record in an event and in views", async () => {
    await approve(MIN_STAKE);
    const signer = signerAddress();
    const keysHash = keysHashOf("node-1");
    await viem.assertions.emitWithArgs(
      p.registry.write.register(
        ["relay.example:9443", region("DE"), keysHash, signer, await consent(signer), MIN_STAKE],
        {
          account: op().account,
        },
      ),
      p.registry,
      "NodeRegistered",
      [getAddress(op().account.address), signer, "0x4445", keysHash, "relay.example:9443", MIN_STAKE],
    );
    const node = await p.registry.read.getNode([op().account.address]);
    assert.equal(node.signer, signer);
    assert.equal(node.region, "0x4445");
    assert.equal(node.stake, MIN_STAKE);
    assert.equal(node.endpoint, "relay.example:9443");
    assert.equal(await p.registry.read.isActive([op().account.address]), true);
    assert.equal(await p.registry.read.operatorOf([signer]), getAddress(op().account.address));
    assert.deepEqual(await p.registry.read.signerOf([op().account.address]), [signer, true]);
    assert.equal(await p.token.read.balanceOf([p.registry.address]), MIN_STAKE);
  });

  it("registers in one transaction with a permit", async () => {
    await fund(p, op().account.address, MIN_STAKE);
    const deadline = BigInt((await networkHelpers.time.latest()) + 600);
    const signature = await op().signTypedData({
      domain: { name: "x0tta6bl4", version: "1", chainId: p.chainId, verifyingContract: p.token.address },
      types: {
        Permit: [
          { name: "owner", type: "address" },
          { name: "spender", type: "address" },
          { name: "value", type: "uint256" },
          { name: "nonce", type: "uint256" },
          { name: "deadline", type: "uint256" },
        ],
      },
      primaryType: "Permit",
      message: { owner: op().account.address, spender: p.registry.address, value: MIN_STAKE, nonce: 0n, deadline },
    });
    const { v, r, s } = parseSignature(signature);
    const signer = signerAddress();
    await p.registry.write.registerWithPermit(
      [
        "10.0.0.1:9443",
        region("FR"),
        keysHashOf("n"),
        signer,
        await consent(signer),
        MIN_STAKE,
        deadline,
        Number(v),
        r,
        s,
      ],
      { account: op().account },
    );
    assert.equal(await p.registry.read.isActive([op().account.address]), true);
  });

  it("refuses bad records with the custom error that names the cause", async () => {
    await approve(MIN_STAKE * 2n);
    const reg = async (
      endpoint: string,
      region: `0x${string}` | string,
      keysHash: `0x${string}`,
      signer: `0x${string}`,
      amount = MIN_STAKE,
    ) =>
      p.registry.write.register(
        [
          endpoint,
          region as `0x${string}`,
          keysHash,
          signer,
          signer === zeroAddress ? "0x" : await consent(signer),
          amount,
        ],
        { account: op().account },
      );
    const k = keysHashOf("k");
    await viem.assertions.revertWithCustomErrorWithArgs(
      reg("", region("DE"), k, signerAddress()),
      p.registry,
      "InvalidEndpoint",
      [0n, 128n],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      reg("x".repeat(129), region("DE"), k, signerAddress()),
      p.registry,
      "InvalidEndpoint",
      [129n, 128n],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      reg("h:1", "0x6465", k, signerAddress()),
      p.registry,
      "InvalidRegion",
      ["0x6465"],
    );
    await viem.assertions.revertWithCustomError(
      reg("h:1", region("DE"), zeroHash, signerAddress()),
      p.registry,
      "ZeroKeysHash",
    );
    await viem.assertions.revertWithCustomError(reg("h:1", region("DE"), k, zeroAddress), p.registry, "ZeroAddress");
    await viem.assertions.revertWithCustomError(
      reg("h:1", region("DE"), k, signerAddress(), 0n),
      p.registry,
      "ZeroAmount",
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      reg("h:1", region("DE"), k, signerAddress(), MIN_STAKE - 1n),
      p.registry,
      "StakeBelowMinimum",
      [MIN_STAKE - 1n, MIN_STAKE],
    );
    const signer = signerAddress();
    await reg("h:1", region("DE"), k, signer);
    await viem.assertions.revertWithCustomErrorWithArgs(
      reg("h:1", region("DE"), k, signerAddress()),
      p.registry,
      "AlreadyRegistered",
      [getAddress(op().account.address)],
    );
    await approve(MIN_STAKE, other());
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.registry.write.register(["h:2", region("DE"), k, signer, await consent(signer, other()), MIN_STAKE], {
        account: other().account,
      }),
      p.registry,
      "SignerInUse",
      [signer, getAddress(op().account.address)],
    );
  });

  it("updates a record and releases the old signer", async () => {
    const oldSigner = await registerRelayer(p, op());
    const newSigner = signerAddress();
    await viem.assertions.emitWithArgs(
      p.registry.write.updateNode(
        ["relay2.example:443", region("NL"), keysHashOf("v2"), newSigner, await consent(newSigner)],
        {
          account: op().account,
        },
      ),
      p.registry,
      "NodeUpdated",
      [getAddress(op().account.address), newSigner, "0x4e4c", keysHashOf("v2"), "relay2.example:443"],
    );
    assert.equal(await p.registry.read.operatorOf([oldSigner.address]), zeroAddress);
    assert.equal(await p.registry.read.operatorOf([newSigner]), getAddress(op().account.address));
    // The released signer can be taken by another operator.
    await approve(MIN_STAKE, other());
    const reuse = await signerConsent(p, oldSigner, other().account.address);
    await p.registry.write.register(["h:3", region("US"), keysHashOf("o"), oldSigner.address, reuse, MIN_STAKE], {
      account: other().account,
    });
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.registry.write.updateNode(
        ["h:1", region("DE"), keysHashOf("x"), newSigner, await consent(newSigner, other())],
        {
          account: other().account,
        },
      ),
      p.registry,
      "SignerInUse",
      [newSigner, getAddress(op().account.address)],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.registry.write.updateNode(["h:1", region("DE"), keysHashOf("x"), newSigner, "0x"], {
        account: p.wallets[4]!.account,
      }),
      p.registry,
      "NotRegistered",
      [getAddress(p.wallets[4]!.account.address)],
    );
  });

  it("adds stake, credits what arrived when the registry is not fee-exempt", async () => {
    await registerRelayer(p, op());
    await approve(100n * X0T);
    await viem.assertions.emitWithArgs(
      p.registry.write.addStake([100n * X0T], { account: op().account }),
      p.registry,
      "StakeAdded",
      [getAddress(op().account.address), 100n * X0T, MIN_STAKE + 100n * X0T],
    );
    await p.token.write.setFeeExempt([p.registry.address, false]);
    await approve(100n * X0T);
    await p.registry.write.addStake([100n * X0T], { account: op().account });
    const node = await p.registry.read.getNode([op().account.address]);
    assert.equal(node.stake, MIN_STAKE + 199n * X0T);
    assert.equal(await p.token.read.balanceOf([p.registry.address]), node.stake);
    await viem.assertions.revertWithCustomError(
      p.registry.write.addStake([0n], { account: op().account }),
      p.registry,
      "ZeroAmount",
    );
  });

  it("unbonds with a delay, keeps the rest at or above the minimum, then withdraws", async () => {
    await registerRelayer(p, op(), MIN_STAKE * 3n);
    const who = getAddress(op().account.address);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.registry.write.unbond([MIN_STAKE * 3n + 1n], { account: op().account }),
      p.registry,
      "UnbondExceedsStake",
      [MIN_STAKE * 3n + 1n, MIN_STAKE * 3n],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.registry.write.unbond([MIN_STAKE * 2n + 1n], { account: op().account }),
      p.registry,
      "StakeBelowMinimum",
      [MIN_STAKE - 1n, MIN_STAKE],
    );
    await viem.assertions.revertWithCustomError(
      p.registry.write.unbond([0n], { account: op().account }),
      p.registry,
      "ZeroAmount",
    );
    await p.registry.write.unbond([MIN_STAKE], { account: op().account });
    assert.equal(await p.registry.read.isActive([op().account.address]), true);
    const now = await networkHelpers.time.latest();
    await viem.assertions.emitWithArgs(
      p.registry.write.unbond([MIN_STAKE * 2n], { account: op().account }),
      p.registry,
      "Unbonded",
      [who, MIN_STAKE * 2n, 0n, MIN_STAKE * 3n, now + 1 + UNBONDING_DELAY],
    );
    assert.equal(await p.registry.read.isActive([op().account.address]), false);
    await viem.assertions.revertWithCustomError(
      p.registry.write.withdraw({ account: op().account }),
      p.registry,
      "StillUnbonding",
    );
    await networkHelpers.time.increase(UNBONDING_DELAY);
    await viem.assertions.emitWithArgs(p.registry.write.withdraw({ account: op().account }), p.registry, "Withdrawn", [
      who,
      MIN_STAKE * 3n,
    ]);
    assert.equal(await p.token.read.balanceOf([who]), MIN_STAKE * 3n);
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.registry.write.withdraw({ account: op().account }),
      p.registry,
      "NothingToWithdraw",
      [who],
    );
  });

  it("slashes stake then unbonding stake, to the slash recipient, by governance only", async () => {
    await registerRelayer(p, op(), MIN_STAKE * 2n);
    await p.registry.write.unbond([MIN_STAKE], { account: op().account });
    const who = getAddress(op().account.address);
    const reason = keysHashOf("proposal-7");
    await viem.assertions.revertWithCustomError(
      p.registry.write.slash([who, 1n, reason], { account: op().account }),
      p.registry,
      "AccessControlUnauthorizedAccount",
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.registry.write.slash([who, MIN_STAKE * 2n + 1n, reason]),
      p.registry,
      "SlashExceedsStake",
      [MIN_STAKE * 2n + 1n, MIN_STAKE * 2n],
    );
    await viem.assertions.revertWithCustomError(p.registry.write.slash([who, 0n, reason]), p.registry, "ZeroAmount");
    await viem.assertions.revertWithCustomError(
      p.registry.write.slash([getAddress(other().account.address), 1n, reason]),
      p.registry,
      "NotRegistered",
    );
    const before = await p.token.read.balanceOf([p.treasury.account.address]);
    await viem.assertions.emitWithArgs(
      p.registry.write.slash([who, MIN_STAKE + MIN_STAKE / 2n, reason]),
      p.registry,
      "Slashed",
      [who, MIN_STAKE, MIN_STAKE / 2n, reason],
    );
    const node = await p.registry.read.getNode([who]);
    assert.equal(node.stake, 0n);
    assert.equal(node.unbonding, MIN_STAKE / 2n);
    assert.equal(await p.token.read.balanceOf([p.treasury.account.address]), before + MIN_STAKE + MIN_STAKE / 2n);
  });

  it("lets governance set the minimum stake, the delay and the slash recipient within bounds", async () => {
    await registerRelayer(p, op());
    await viem.assertions.emitWithArgs(p.registry.write.setMinStake([MIN_STAKE * 2n]), p.registry, "MinStakeChanged", [
      MIN_STAKE,
      MIN_STAKE * 2n,
    ]);
    assert.equal(
      await p.registry.read.isActive([op().account.address]),
      false,
      "below a raised minimum the node is inactive",
    );
    await viem.assertions.revertWithCustomError(p.registry.write.setMinStake([0n]), p.registry, "ZeroAmount");
    await viem.assertions.emitWithArgs(
      p.registry.write.setUnbondingDelay([86_400]),
      p.registry,
      "UnbondingDelayChanged",
      [UNBONDING_DELAY, 86_400],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      p.registry.write.setUnbondingDelay([90 * 86_400 + 1]),
      p.registry,
      "UnbondingDelayTooLong",
      [90 * 86_400 + 1, 90 * 86_400],
    );
    const recipient = getAddress(other().account.address);
    await viem.assertions.emitWithArgs(
      p.registry.write.setSlashRecipient([recipient]),
      p.registry,
      "SlashRecipientChanged",
      [getAddress(p.treasury.account.address), recipient],
    );
    await viem.assertions.revertWithCustomError(
      p.registry.write.setSlashRecipient([zeroAddress]),
      p.registry,
      "ZeroAddress",
    );
    await viem.assertions.revertWithCustomError(
      p.registry.write.setMinStake([1n], { account: op().account }),
      p.registry,
      "AccessControlUnauthorizedAccount",
    );
  });

  it("lists nodes page by page in registration order", async () => {
    const operators = p.wallets.slice(2, 7);
    for (const w of operators) await registerRelayer(p, w);
    assert.equal(await p.registry.read.nodeCount(), 5n);
    const [first] = await p.registry.read.nodesPage([0n, 2n]);
    const [second] = await p.registry.read.nodesPage([2n, 2n]);
    const [third, records] = await p.registry.read.nodesPage([4n, 10n]);
    const [none] = await p.registry.read.nodesPage([9n, 10n]);
    assert.deepEqual(
      [...first, ...second, ...third],
      operators.map((w) => getAddress(w.account.address)),
    );
    assert.equal(records[0]!.stake, MIN_STAKE);
    assert.equal(none.length, 0);
  });

  it("refuses a zero token or admin at deployment", async () => {
    const admin = p.deployer.account.address;
    await viem.assertions.revertWithCustomError(
      viem.deployContract("RelayerRegistry", [zeroAddress, admin, 1n, 0, admin]),
      p.registry,
      "ZeroAddress",
    );
    await viem.assertions.revertWithCustomError(
      viem.deployContract("RelayerRegistry", [p.token.address, admin, 1n, 0, zeroAddress]),
      p.registry,
      "ZeroAddress",
    );
  });
});

/**
 * Gas of the calls users pay for, measured on the in-process EVM from real transaction receipts.
 * Used by test/contracts/gas.test.ts (budgets) and scripts/gas-report.ts (the table in README).
 */
import { getAddress, type Hex, type LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { signClientKeyAuthorization, signLockRequest, signReceipt } from "@x0tta6bl4/relayer/accounting/receipts";
import { signPermit } from "@x0tta6bl4/relayer/chain/permit";
import {
  type Connection,
  deployProtocol,
  fund,
  keysHashOf,
  MIN_STAKE,
  type Protocol,
  region,
  registerRelayer,
  signerConsent,
  warpToEpoch,
  X0T,
} from "./protocol.js";

export interface GasRow {
  call: string;
  gas: bigint;
  /** Goal from shared/PERFORMANCE.md, where it sets one. */
  goal?: bigint;
  /** Regression ceiling asserted by test/contracts/gas.test.ts. */
  ceiling: bigint;
  note: string;
}

async function gasOf(p: Protocol, hash: Promise<Hex>): Promise<bigint> {
  const receipt = await p.publicClient.waitForTransactionReceipt({ hash: await hash });
  if (receipt.status !== "success") throw new Error(`transaction ${receipt.transactionHash} reverted`);
  return receipt.gasUsed;
}

async function permit(p: Protocol, owner: Protocol["wallets"][number], spender: Hex, value: bigint) {
  const deadline = BigInt(Math.floor(Date.now() / 1000) + 10 * 365 * 86_400);
  const nonce = await p.token.read.nonces([owner.account.address]);
  const wallet = owner as unknown as Parameters<typeof signPermit>[0];
  const sig = await signPermit(wallet, {
    token: p.token.address,
    name: "x0tta6bl4",
    chainId: p.chainId,
    spender,
    value,
    nonce,
    deadline,
  });
  return { deadline, ...sig };
}

/**
 * `count` fresh payer accounts, each with credit, one client key and a lock for `relayer` landed
 * by the relay from the key's signed request (one `openLocks` batch); their receipts for `epoch`.
 */
async function payersWithReceipts(
  connection: Connection,
  p: Protocol,
  count: number,
  relayer: Protocol["wallets"][number],
  epoch: bigint,
) {
  const receipts = [];
  const keys: LocalAccount[] = [];
  const requests = [];
  const relayerAddress = getAddress(relayer.account.address);
  for (let i = 0; i < count; i++) {
    const payer = privateKeyToAccount(generatePrivateKey());
    await connection.networkHelpers.setBalance(payer.address, 10n ** 18n);
    await fund(p, payer.address, X0T);
    await p.token.write.approve([p.credit.address, X0T], { account: payer });
    await p.credit.write.buy([X0T], { account: payer });
    const key = privateKeyToAccount(generatePrivateKey());
    const cap = 10n ** 9n;
    const proof = await signClientKeyAuthorization(key, p.creditDomain, payer.address, cap);
    await p.credit.write.authorizeClientKey([key.address, cap, proof], { account: payer });
    requests.push(
      await signLockRequest(key, p.creditDomain, {
        relayer: relayerAddress,
        bytes: 2n * 10n ** 8n,
        expiresEpoch: epoch + 2n,
        nonce: BigInt(i),
      }),
    );
    receipts.push(
      await signReceipt(key, p.receiptDomain, { relayer: relayerAddress, epoch, cells: 100_000n, bytes: 10n ** 8n }),
    );
    keys.push(key);
  }
  const lockGas = await gasOf(p, p.credit.write.openLocks([requests], { account: relayer.account }));
  /** The same payers' next receipts: the channels already exist (a relay's usual epoch). */
  const next = (nextEpoch: bigint) =>
    Promise.all(
      keys.map((key) =>
        signReceipt(key, p.receiptDomain, {
          relayer: relayerAddress,
          epoch: nextEpoch,
          cells: 200_000n,
          bytes: 2n * 10n ** 8n,
        }),
      ),
    );
  return { receipts, lockGas, next };
}

export async function measureGas(connection: Connection): Promise<GasRow[]> {
  // Hour-long epochs: the setup below mines hundreds of blocks, each at least a second apart.
  const p = await deployProtocol(connection, { minAttestations: 1, epochLength: 3_600 });
  const w = p.wallets;
  const rows: GasRow[] = [];

  // A transfer between two holders (1% burned).
  await fund(p, w[2]!.account.address, 1_000n * X0T);
  await fund(p, w[3]!.account.address, 1n);
  rows.push({
    call: "X0T.transfer",
    gas: await gasOf(p, p.token.write.transfer([w[3]!.account.address, 10n * X0T], { account: w[2]!.account })),
    ceiling: 90_000n,
    note: "between two holders; 1% burned (an ERC20Votes supply checkpoint)",
  });

  // Buy credit with a permit, in one transaction.
  const buyer = w[4]!;
  await fund(p, buyer.account.address, 10n * X0T);
  const sig = await permit(p, buyer, p.credit.address, 10n * X0T);
  rows.push({
    call: "BandwidthCredit.buyWithPermit",
    gas: await gasOf(
      p,
      p.credit.write.buyWithPermit([10n * X0T, sig.deadline, sig.v, sig.r, sig.s], { account: buyer.account }),
    ),
    goal: 150_000n,
    ceiling: 150_000n,
    note: "first purchase of the account",
  });

  // Stake + register. The very first registration also creates the registry's balance and list.
  await registerRelayer(p, w[8]!);
  const operator = w[5]!;
  await fund(p, operator.account.address, 2n * MIN_STAKE);
  await p.token.write.approve([p.registry.address, MIN_STAKE], { account: operator.account });
  const nodeSigner = privateKeyToAccount(generatePrivateKey());
  const consent = await signerConsent(p, nodeSigner, operator.account.address);
  rows.push({
    call: "RelayerRegistry.register",
    gas: await gasOf(
      p,
      p.registry.write.register(
        ["relay-01.example.net:9443", region("DE"), keysHashOf("gas"), nodeSigner.address, consent, MIN_STAKE],
        { account: operator.account },
      ),
    ),
    goal: 200_000n,
    ceiling: 260_000n,
    note: "stake + register after approve, 25-byte endpoint; unique keys/endpoint/signer + signer consent",
  });
  const operator2 = w[9]!;
  await fund(p, operator2.account.address, MIN_STAKE);
  const stakeSig = await permit(p, operator2, p.registry.address, MIN_STAKE);
  const signer2 = privateKeyToAccount(generatePrivateKey());
  const consent2 = await signerConsent(p, signer2, operator2.account.address);
  rows.push({
    call: "RelayerRegistry.registerWithPermit",
    gas: await gasOf(
      p,
      p.registry.write.registerWithPermit(
        [
          "relay-02.example.net:9443",
          region("DE"),
          keysHashOf("gas2"),
          signer2.address,
          consent2,
          MIN_STAKE,
          stakeSig.deadline,
          stakeSig.v,
          stakeSig.r,
          stakeSig.s,
        ],
        {
          account: operator2.account,
        },
      ),
    ),
    ceiling: 290_000n,
    note: "the same in one transaction (the permit writes nonce + allowance)",
  });

  // Receipts: a 1-receipt and a 100-receipt batch, each the relayer's first for its epoch.
  const relayerA = w[6]!;
  const relayerB = w[7]!;
  await registerRelayer(p, relayerA);
  await registerRelayer(p, relayerB);
  const one = await payersWithReceipts(connection, p, 1, relayerA, 0n);
  const hundred = await payersWithReceipts(connection, p, 100, relayerB, 0n);
  rows.push({
    call: "BandwidthCredit.openLocks, 1 request",
    gas: one.lockGas,
    ceiling: 140_000n,
    note: "a payer's signed lock for one relay, landed by the relay (new lock slot, nonce word, the key's first spend)",
  });
  rows.push({
    call: "BandwidthCredit.openLocks, 100 requests",
    gas: hundred.lockGas,
    ceiling: 10_500_000n,
    note: "100 payers' first locks for one relay in one batch",
  });
  rows.push({
    call: "marginal gas per lock request",
    gas: (hundred.lockGas - one.lockGas) / 99n,
    ceiling: 105_000n,
    note: "(gas(100) - gas(1)) / 99",
  });
  await warpToEpoch(connection, p, 1n);
  const gas1 = await gasOf(
    p,
    p.rewards.write.submitReceipts([relayerA.account.address, 0n, one.receipts], { account: relayerA.account }),
  );
  const gas100 = await gasOf(
    p,
    p.rewards.write.submitReceipts([relayerB.account.address, 0n, hundred.receipts], { account: relayerB.account }),
  );
  rows.push({
    call: "EpochRewards.submitReceipts, 1 receipt",
    gas: gas1,
    ceiling: 220_000n,
    note: "first batch of the relayer's epoch",
  });
  rows.push({
    call: "EpochRewards.submitReceipts, 100 receipts",
    gas: gas100,
    ceiling: 4_800_000n,
    note: "100 payers' first receipts with this relay (each opens its key's channel slot)",
  });
  rows.push({
    call: "marginal gas per first receipt of a channel",
    gas: (gas100 - gas1) / 99n,
    ceiling: 46_000n,
    note: "once per (client key, relay): a fresh storage slot",
  });
  // The relay's usual epoch: the same payers again, their channels already open.
  const [next1, next100] = [await one.next(1n), await hundred.next(1n)];
  await warpToEpoch(connection, p, 2n);
  const steady1 = await gasOf(
    p,
    p.rewards.write.submitReceipts([relayerA.account.address, 1n, next1], { account: relayerA.account }),
  );
  const steady100 = await gasOf(
    p,
    p.rewards.write.submitReceipts([relayerB.account.address, 1n, next100], { account: relayerB.account }),
  );
  rows.push({
    call: "EpochRewards.submitReceipts, 100 receipts, next epoch",
    gas: steady100,
    ceiling: 3_100_000n,
    note: "the same 100 payers in the following epoch (their usual batch)",
  });
  rows.push({
    call: "marginal gas per receipt",
    gas: (steady100 - steady1) / 99n,
    goal: 30_000n,
    ceiling: 30_000n,
    note: "(gas(100) - gas(1)) / 99, channels open",
  });

  // Claims: the relayer already holds X0T (the usual case after its first claim).
  const relayer = getAddress(relayerB.account.address);
  await fund(p, relayer, X0T);
  const epochs: bigint[] = [];
  for (let e = 2n; e <= 25n; e++) {
    const batch = await payersWithReceipts(connection, p, 1, relayerB, e);
    await warpToEpoch(connection, p, e + 1n);
    await p.rewards.write.submitReceipts([relayer, e, batch.receipts], { account: relayerB.account });
    epochs.push(e);
  }
  await warpToEpoch(connection, p, 27n);
  rows.push({
    call: "EpochRewards.claim, 1 epoch",
    gas: await gasOf(p, p.rewards.write.claim([relayer, [0n]])),
    goal: 80_000n,
    ceiling: 100_000n,
    note: "~29k of it is ERC20Votes' supply checkpoint that every mint writes",
  });
  const gas24 = await gasOf(p, p.rewards.write.claim([relayer, epochs]));
  rows.push({
    call: "EpochRewards.claim, 24 epochs",
    gas: gas24,
    ceiling: 400_000n,
    note: "a day of hourly epochs, one mint",
  });
  rows.push({
    call: "claim gas per epoch, 24 at once",
    gas: gas24 / 24n,
    ceiling: 20_000n,
    note: "how relayers should claim",
  });
  return rows;
}

export function formatGasTable(rows: GasRow[]): string {
  const lines = ["| call | gas | goal | note |", "| --- | ---: | --- | --- |"];
  for (const r of rows) {
    const goal =
      r.goal === undefined ? "" : `<= ${r.goal.toLocaleString("en-US")} ${r.gas <= r.goal ? "met" : "**missed**"}`;
    lines.push(`| ${r.call} | ${r.gas.toLocaleString("en-US")} | ${goal} | ${r.note} |`);
  }
  return lines.join("\n");
}

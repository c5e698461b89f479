/**
 * `npm run bench:settlement`: what settlement costs a relay, beside baselines measured in the same
 * run. A receipt is signed by the payer and checked by the relay once every N cells; its cost is
 * compared with sealing those N cells with AES-256-GCM (a lower bound of what relaying them costs),
 * which gives the share of a relay's CPU that receipts take. SQLite throughput is measured for the
 * store's real settings (WAL, synchronous=FULL: every receipt committed before it is acknowledged)
 * against the rate of receipts a busy relay needs. Goal (../shared/PERFORMANCE.md): receipts <= 2% of a relay's CPU.
 *
 * X0T_RECEIPT_CELLS (default 1024 = 16 MiB of full cells) sets N.
 */
import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  epochRewardsDomain,
  type SignedReceipt,
  signReceipt,
  verifyReceipt,
} from "../relayer/src/accounting/receipts.ts";
import { AccountingStore } from "../relayer/src/accounting/store.ts";

const N = BigInt(process.env.X0T_RECEIPT_CELLS ?? 1024);
const CELL = 16_384;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const dir = mkdtempSync(join(tmpdir(), "x0t-bench-settlement-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const key = privateKeyToAccount(generatePrivateKey());
const relayer = privateKeyToAccount(generatePrivateKey()).address;
const domain = epochRewardsDomain(84532, "0x0000000000000000000000000000000000000001");

// Receipts: sign (payer) and recover (relay), one per N cells.
const sign: number[] = [];
const verify: number[] = [];
const receipts: SignedReceipt[] = [];
for (let i = 1; i <= 200; i++) {
  let t = performance.now();
  const r = await signReceipt(key, domain, { relayer, epoch: 7n, cells: N * BigInt(i), bytes: N * BigInt(i) * 5_462n });
  sign.push(performance.now() - t);
  t = performance.now();
  if (!(await verifyReceipt(domain, relayer, 7n, r))) throw new Error("a receipt did not verify");
  verify.push(performance.now() - t);
  receipts.push(r);
}

// Baseline: sealing the N cells a receipt covers (one GCM pass each; a 3-hop relay does more).
const cell = randomBytes(CELL);
const keyBytes = randomBytes(32);
const seal: number[] = [];
for (let round = 0; round < 5; round++) {
  const t = performance.now();
  for (let i = 0n; i < N; i++) {
    const c = createCipheriv("aes-256-gcm", keyBytes, randomBytes(12));
    c.update(cell);
    c.final();
    c.getAuthTag();
  }
  seal.push(performance.now() - t);
}
const receiptMs = median(sign) + median(verify);
const sealMs = median(seal);

// The store: sustained receipt writes, as configured and with synchronous=NORMAL.
function writesPerSecond(store: AccountingStore, count: number): number {
  const t = performance.now();
  for (let i = 0; i < count; i++) {
    const r = receipts[i % receipts.length]!;
    store.saveReceipt(BigInt(Math.floor(i / receipts.length)), {
      ...r,
      key: `0x${(i + 1).toString(16).padStart(40, "0")}`,
    });
  }
  return count / ((performance.now() - t) / 1000);
}
const full = new AccountingStore(join(dir, "full.sqlite"));
const fullRate = writesPerSecond(full, 2_000);
full.close();
console.log("| figure | value | baseline (same run) | ratio | goal |");
console.log("| --- | --- | --- | --- | --- |");
console.log(
  `| receipt sign + verify, median | ${receiptMs.toFixed(3)} ms (sign ${median(sign).toFixed(3)}, verify ${median(verify).toFixed(3)}) | GCM seal of the ${N} cells it covers: ${sealMs.toFixed(2)} ms | ${((100 * receiptMs) / (receiptMs + sealMs)).toFixed(2)}% of the CPU of those cells | <= 2% |`,
);
console.log(`| SQLite receipt writes (WAL, synchronous=FULL) | ${fullRate.toFixed(0)}/s | | | |`);
console.log(
  `| receipts a relay needs per second at 1 Gbit/s, one per ${N} cells | ${(125e6 / CELL / Number(N)).toFixed(1)}/s | SQLite capacity ${fullRate.toFixed(0)}/s | ${((125e6 / CELL / Number(N) / fullRate) * 100).toFixed(3)}% of it | |`,
);

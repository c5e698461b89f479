/**
 * `npm run verify:base-sepolia`, and the last step of scripts/deploy.ts: verifies every contract of
 * an Ignition deployment on the block explorer, on the network the deployment was made on.
 *
 * `hardhat ignition verify chain-84532` without `--network baseSepolia` connects to the default
 * in-process chain (31337), prints "not supported" and exits 0: it verified nothing and looked like
 * success. Here the network is always passed, and the run fails (exit 1) unless Hardhat exits 0 and
 * its output carries no refusal (not supported, failed, error, missing API key…).
 *
 *   node scripts/verify-deployment.ts <deploymentId> <network>
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** Phrases with which `ignition verify` or the explorer refuses while Hardhat may still exit 0. */
const REFUSALS = [/not supported/i, /\bfail/i, /\berror\b/i, /invalid api key/i, /missing api key/i, /unable to/i];

export class VerifyError extends Error {
  override name = "VerifyError";
}

/** Throws unless `ignition verify` verified: exit code 0 and no refusal in its output. */
export function assertVerified(status: number | null, output: string, deploymentId: string, network: string): void {
  const refusal = REFUSALS.find((r) => r.test(output));
  if (status !== 0 || refusal)
    throw new VerifyError(
      `verification of ${deploymentId} on ${network} failed (exit ${status ?? "signal"}${refusal ? `, output matched ${refusal}` : ""}):\n${output.trim()}`,
    );
}

/** Runs `hardhat ignition verify <deploymentId> --network <network>`; throws on any refusal. */
export function verifyDeployment(deploymentId: string, network: string): string {
  const hardhatCli = join(dirname(createRequire(import.meta.url).resolve("hardhat")), "cli.js");
  const run = spawnSync(process.execPath, [hardhatCli, "ignition", "verify", deploymentId, "--network", network], {
    encoding: "utf8",
  });
  const output = `${run.stdout ?? ""}${run.stderr ?? ""}`;
  assertVerified(run.status, output, deploymentId, network);
  return output;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [deploymentId, network] = process.argv.slice(2);
  if (!deploymentId || !network) {
    console.error("usage: node scripts/verify-deployment.ts <deploymentId> <network>   e.g. chain-84532 baseSepolia");
    process.exit(2);
  }
  try {
    process.stdout.write(verifyDeployment(deploymentId, network));
    console.log(`verified ${deploymentId} on ${network}`);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}

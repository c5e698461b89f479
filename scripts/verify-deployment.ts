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
const REFUSALS = [
  /not supported/i,
  /\bfail/i,
  /\berror\b/i,
  /invalid api key/i,
  /missing api key/i,
  /unable to/i,
  /could not resolve contract artifacts/i,
  /no verification providers are enabled/i,
];
/** Lines of a run that verified, though they carry a refusal's words. */
const BENIGN = [
  // hardhat-verify's first attempt uses the minimal solc input; a deployment built without
  // isolated builds needs the full input, which it submits next (and which then passes).
  /^The initial verification attempt for \S+ failed using the minimal compiler input\.$/gm,
];
/** What a run prints for each contract it verified (or found verified). */
const VERIFIED = /verified successfully|successfully verified|has already been verified/i;

export class VerifyError extends Error {
  override name = "VerifyError";
}

/**
 * Throws unless `ignition verify` verified: exit code 0, no refusal in its output (benign retry
 * notices aside), and at least one contract verified.
 */
export function assertVerified(status: number | null, output: string, deploymentId: string, network: string): void {
  const checked = BENIGN.reduce((text, line) => text.replace(line, ""), output);
  const refusal = REFUSALS.find((r) => r.test(checked));
  const nothing = !VERIFIED.test(checked);
  if (status !== 0 || refusal || nothing)
    throw new VerifyError(
      `verification of ${deploymentId} on ${network} failed (exit ${status ?? "signal"}${refusal ? `, output matched ${refusal}` : ""}${nothing ? ", no contract verified" : ""}):\n${output.trim()}`,
    );
}

/** Runs `hardhat ignition verify <deploymentId> --network <network>`; throws on any refusal. */
export function verifyDeployment(deploymentId: string, network: string): string {
  const hardhatCli = join(dirname(createRequire(import.meta.url).resolve("hardhat")), "cli.js");
  // Read-only: the verifying process gets no account, hence never the deployer's key.
  const env: NodeJS.ProcessEnv = { ...process.env, X0T_READ_ONLY: "1" };
  delete env.DEPLOYER_PRIVATE_KEY;
  const run = spawnSync(process.execPath, [hardhatCli, "ignition", "verify", deploymentId, "--network", network], {
    encoding: "utf8",
    env,
    maxBuffer: 64 * 1024 * 1024,
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

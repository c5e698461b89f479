/**
 * `npm run snapshot:space`: writes deploy/snapshot/space.json from the Base Sepolia deployment
 * (deployments/84532.json, written by `npm run deploy:base-sepolia`: its VoterRegistry and
 * TreasurySafe), or from X0T_VOTER_REGISTRY / X0T_COUNCIL_SAFE in the environment. Then paste it
 * into the space's settings (JSON editor) on https://testnet.snapshot.box, signed by the council Safe.
 *
 * X0T_DEPLOYMENTS_DIR reads another deployments folder; X0T_SPACE_OUT writes elsewhere.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { isAddress } from "viem";
import { DeploymentFileError, readDeploymentFile } from "../relayer/src/deployments/index.ts";
import { BASE_SEPOLIA, buildSpace } from "../relayer/src/governance/space.ts";

const file = join(process.env.X0T_DEPLOYMENTS_DIR ?? "deployments", `${BASE_SEPOLIA}.json`);
let fromFile: { voterRegistry?: string; councilSafe?: string } = {};
let why = "";
try {
  const { contracts } = readDeploymentFile(file, {
    chainId: Number(BASE_SEPOLIA),
    require: ["VoterRegistry", "TreasurySafe"],
  });
  fromFile = { voterRegistry: contracts.VoterRegistry, councilSafe: contracts.TreasurySafe };
} catch (error) {
  if (!(error instanceof DeploymentFileError)) throw error;
  why = error.shortMessage;
}
const voterRegistry = process.env.X0T_VOTER_REGISTRY ?? fromFile.voterRegistry;
const councilSafe = process.env.X0T_COUNCIL_SAFE ?? fromFile.councilSafe;
if (!voterRegistry || !isAddress(voterRegistry) || !councilSafe || !isAddress(councilSafe)) {
  console.error(
    `need the VoterRegistry and the council Safe: ${why || `${file} lacks them`}; or set X0T_VOTER_REGISTRY and X0T_COUNCIL_SAFE`,
  );
  process.exit(1);
}
const out = process.env.X0T_SPACE_OUT ?? "deploy/snapshot/space.json";
writeFileSync(out, JSON.stringify(buildSpace({ voterRegistry, councilSafe }), null, 2) + "\n");
console.log(`${out} written for VoterRegistry ${voterRegistry}, treasury ${councilSafe}, no admins`);

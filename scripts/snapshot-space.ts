/**
 * `npm run snapshot:space`: writes deploy/snapshot/space.json from the Base Sepolia deployment
 * (Ignition's deployed_addresses.json of chain 84532: Governance#VoterRegistry and Treasury#Safe),
 * or from X0T_VOTER_REGISTRY / X0T_COUNCIL_SAFE in the environment. Then paste it into the space's settings (JSON
 * editor) on https://testnet.snapshot.box, signed by the council Safe.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { isAddress } from "viem";
import { buildSpace } from "../relayer/src/governance/space.ts";

const journal = "deploy/ignition/deployments/chain-84532/deployed_addresses.json";
const deployed: Record<string, string> = existsSync(journal)
  ? (JSON.parse(readFileSync(journal, "utf8")) as Record<string, string>)
  : {};
const voterRegistry = process.env.X0T_VOTER_REGISTRY ?? deployed["Governance#VoterRegistry"];
const councilSafe = process.env.X0T_COUNCIL_SAFE ?? deployed["Treasury#Safe"];
if (!voterRegistry || !isAddress(voterRegistry) || !councilSafe || !isAddress(councilSafe)) {
  console.error(
    `need the VoterRegistry and the council Safe: deploy to Base Sepolia first (${journal}) or set X0T_VOTER_REGISTRY and X0T_COUNCIL_SAFE`,
  );
  process.exit(1);
}
writeFileSync("deploy/snapshot/space.json", JSON.stringify(buildSpace({ voterRegistry, councilSafe }), null, 2) + "\n");
console.log(
  `deploy/snapshot/space.json written for VoterRegistry ${voterRegistry}, treasury ${councilSafe}, no admins`,
);

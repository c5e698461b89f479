/**
 * Reads an Ignition parameters file (deploy/ignition/parameters/<network>.json) the way Ignition's
 * CLI does: a decimal string ending in "n" is a bigint. Shared by scripts/deploy.ts and the tests.
 *
 * `checkParameters` is the deploy script's reading of it: what a public chain needs (a council and
 * threshold, a guardian that is not on the council, the vesting of the distributor's allocation)
 * refused before anything is sent, each error naming the file and the key.
 */
import { existsSync, readFileSync } from "node:fs";
import { isAddress } from "viem";

export type Params = Record<string, string | number | bigint | boolean | string[]>;
export type Parameters = Record<string, Params | undefined>;

export function readParameters(file: string): Parameters {
  return JSON.parse(readFileSync(file, "utf8"), (_key, value: unknown) =>
    typeof value === "string" && /^\d+n$/.test(value) ? BigInt(value.slice(0, -1)) : value,
  ) as Parameters;
}

/** deploy/ignition/parameters/<file>.json for a Hardhat network name (baseSepolia → base-sepolia). */
export function parametersFileFor(networkName: string): string {
  const file = networkName.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return `deploy/ignition/parameters/${file}.json`;
}

const ZERO = /^0x0{40}$/;
/** An address; a mixed-case one must carry a valid EIP-55 checksum (a typo is caught here). */
const isOwner = (value: unknown): value is string => typeof value === "string" && isAddress(value, { strict: true });
/** Safe's OwnerManager refuses these as owners: the zero address and its sentinel 0x…01. */
const SAFE_RESERVED = /^0x0{39}[01]$/;

/**
 * Reads `file` and checks it for a deployment; `publicChain` adds the rules of a public chain.
 * Throws an Error naming the file and the key.
 */
export function checkParameters(file: string, publicChain: boolean): Parameters {
  if (!existsSync(file))
    throw new Error(
      `${file} does not exist: copy deploy/ignition/parameters/base-sepolia.example.json to it and fill in the council, guardian and vesting (or point X0T_DEPLOY_PARAMETERS at your file)`,
    );
  let parameters: Parameters;
  try {
    parameters = readParameters(file);
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`, { cause: error });
  }
  const council = parameters.Treasury?.council;
  if (!Array.isArray(council) || council.length === 0)
    throw new Error(`${file}: Treasury.council is required (the treasury Safe's owners)`);
  for (const [i, owner] of council.entries()) {
    if (!isOwner(owner) || SAFE_RESERVED.test(owner))
      throw new Error(
        `${file}: Treasury.council[${i}] must be an owner's address with a valid checksum (not 0x0 or 0x…01), got "${owner}"`,
      );
  }
  if (new Set(council.map((a) => a.toLowerCase())).size !== council.length)
    throw new Error(`${file}: Treasury.council lists an address twice`);
  const threshold = parameters.Treasury?.threshold;
  if (typeof threshold !== "number" || !Number.isInteger(threshold) || threshold < 1 || threshold > council.length)
    throw new Error(`${file}: Treasury.threshold must be an integer from 1 to ${council.length}`);
  if (!publicChain) return parameters;

  if (parameters.Protocol?.distributor !== undefined)
    throw new Error(
      `${file}: Protocol.distributor must not be set: the distributor's allocation vests (Treasury.vesting*)`,
    );
  // The vesting start is a fixed parameter, not "now": a resumed run must repeat the same arguments.
  for (const key of ["vestingBeneficiary", "vestingStart"])
    if (parameters.Treasury?.[key] === undefined) throw new Error(`${file}: Treasury.${key} is required`);
  // A guardian that can veto, distinct from the council (a council that vetoes its own critics'
  // proposals would be no check at all).
  const guardian = String(parameters.Governance?.guardian ?? "");
  if (!isOwner(guardian) || ZERO.test(guardian))
    throw new Error(
      `${file}: Governance.guardian is required on a public chain (a separate Safe's address with a valid checksum)`,
    );
  const beneficiary = parameters.Treasury?.vestingBeneficiary;
  if (!isOwner(beneficiary) || ZERO.test(beneficiary))
    throw new Error(`${file}: Treasury.vestingBeneficiary must be an address with a valid checksum`);
  if (council.some((a) => a.toLowerCase() === guardian.toLowerCase()))
    throw new Error(`${file}: Governance.guardian must not be a council member`);
  return parameters;
}

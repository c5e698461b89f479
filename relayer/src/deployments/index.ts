/**
 * Where the contracts are: one committed file per public chain, `deployments/<chainId>.json`
 * (written by scripts/deploy.ts, e.g. deployments/84532.json for Base Sepolia), and the local file
 * `npm start` writes (.x0t/deployment.json). The relayer's CLI, the web app and the Snapshot space
 * read them through this module, so that nobody pastes an address and a damaged file is refused
 * with the key that is wrong.
 *
 * The shape is the one `.x0t/deployment.json` already has — `{ chainId, rpcUrl?, contracts }` —
 * plus what a public deployment adds (network, explorer, deployment id, Safe and council). The
 * `rpcUrl` of a public chain is its public endpoint, never the deployer's BASE_SEPOLIA_RPC_URL
 * (which often carries an API key).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Address, getAddress, isAddress } from "viem";

/** The four contracts every reader needs. */
export const PROTOCOL_CONTRACTS = ["X0T", "RelayerRegistry", "BandwidthCredit", "EpochRewards"] as const;
/** The governance contracts of a full deployment (scripts/deploy.ts and `npm start`). */
export const GOVERNANCE_CONTRACTS = [
  "QuadraticGovernor",
  "VoterRegistry",
  "TimelockController",
  "TreasurySafe",
  "CouncilGuard",
  "TreasuryExecutor",
] as const;
/** Written by scripts/deploy.ts on public chains only. */
export const PUBLIC_CHAIN_CONTRACTS = ["GenesisVesting", "EASPersonhoodSource"] as const;

export type ContractName =
  (typeof PROTOCOL_CONTRACTS)[number] | (typeof GOVERNANCE_CONTRACTS)[number] | (typeof PUBLIC_CHAIN_CONTRACTS)[number];

export interface SafeDeployment {
  singleton: Address;
  factory: Address;
  handler: Address;
}

export interface Deployment {
  chainId: number;
  /** Hardhat network name it was deployed with (e.g. "baseSepolia"). */
  network?: string;
  /** A public JSON-RPC endpoint of the chain (no key in it). */
  rpcUrl?: string;
  /** The block explorer's web address, for links. */
  explorer?: string;
  /** Ignition's deployment id: the journal in deploy/ignition/deployments/<id>/. */
  deploymentId?: string;
  deployer?: Address;
  /** First block of the deployment: where event scans can start. */
  startBlock?: number;
  contracts: Partial<Record<ContractName, Address>> & Record<(typeof PROTOCOL_CONTRACTS)[number], Address>;
  /** The treasury Safe's owners and threshold. */
  council?: Address[];
  threshold?: number;
  /** The Safe 1.5 singleton, factory and fallback handler the treasury Safe was created with. */
  safe?: SafeDeployment;
}

/** A deployment file that is missing or wrong; `shortMessage` names the file and the key. */
export class DeploymentFileError extends Error {
  readonly shortMessage: string;
  constructor(shortMessage: string, options?: { cause?: unknown }) {
    super(shortMessage, options);
    this.name = "DeploymentFileError";
    this.shortMessage = shortMessage;
  }
}

/** `deployments/<chainId>.json` under `root` (default: the current directory). */
export function deploymentFilePath(chainId: number, root = process.cwd()): string {
  return join(root, "deployments", `${chainId}.json`);
}

function address(source: string, key: string, value: unknown): Address {
  if (typeof value !== "string" || !isAddress(value, { strict: false }))
    throw new DeploymentFileError(`${source}: ${key} must be a 0x address, got ${JSON.stringify(value)}`);
  return getAddress(value);
}

function optionalString(source: string, key: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "")
    throw new DeploymentFileError(`${source}: ${key} must be a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

function optionalInteger(source: string, key: string, value: unknown, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min)
    throw new DeploymentFileError(`${source}: ${key} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * Validates a parsed deployment file. `require` lists contracts that must be present (default: the
 * four protocol contracts); `chainId` is the chain the caller expects. Addresses come back
 * checksummed; unknown keys are dropped.
 */
export function parseDeployment(
  value: unknown,
  source: string,
  options: { require?: readonly ContractName[]; chainId?: number } = {},
): Deployment {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new DeploymentFileError(`${source}: expected a JSON object`);
  const raw = value as Record<string, unknown>;
  const chainId = optionalInteger(source, "chainId", raw.chainId, 1);
  if (chainId === undefined) throw new DeploymentFileError(`${source}: chainId is required`);
  if (options.chainId !== undefined && chainId !== options.chainId)
    throw new DeploymentFileError(`${source}: chainId is ${chainId}, expected ${options.chainId}`);
  if (typeof raw.contracts !== "object" || raw.contracts === null || Array.isArray(raw.contracts))
    throw new DeploymentFileError(`${source}: contracts must be an object of name → address`);
  const given = raw.contracts as Record<string, unknown>;
  const known: readonly ContractName[] = [...PROTOCOL_CONTRACTS, ...GOVERNANCE_CONTRACTS, ...PUBLIC_CHAIN_CONTRACTS];
  const contracts: Partial<Record<ContractName, Address>> = {};
  for (const name of options.require ?? PROTOCOL_CONTRACTS)
    if (given[name] === undefined) throw new DeploymentFileError(`${source}: contracts.${name} is missing`);
  for (const name of known)
    if (given[name] !== undefined) contracts[name] = address(source, `contracts.${name}`, given[name]);

  const deployment: Deployment = { chainId, contracts: contracts as Deployment["contracts"] };
  const network = optionalString(source, "network", raw.network);
  if (network !== undefined) deployment.network = network;
  for (const key of ["rpcUrl", "explorer"] as const) {
    const url = optionalString(source, key, raw[key]);
    if (url === undefined) continue;
    if (!/^https?:\/\/[^\s]+$/.test(url))
      throw new DeploymentFileError(`${source}: ${key} must be an http(s) URL, got ${JSON.stringify(url)}`);
    deployment[key] = url;
  }
  const deploymentId = optionalString(source, "deploymentId", raw.deploymentId);
  if (deploymentId !== undefined) deployment.deploymentId = deploymentId;
  if (raw.deployer !== undefined) deployment.deployer = address(source, "deployer", raw.deployer);
  const startBlock = optionalInteger(source, "startBlock", raw.startBlock, 0);
  if (startBlock !== undefined) deployment.startBlock = startBlock;
  if (raw.council !== undefined) {
    if (!Array.isArray(raw.council) || raw.council.length === 0)
      throw new DeploymentFileError(`${source}: council must be a non-empty array of addresses`);
    deployment.council = raw.council.map((a, i) => address(source, `council[${i}]`, a));
  }
  const threshold = optionalInteger(source, "threshold", raw.threshold, 1);
  if (threshold !== undefined) {
    if (deployment.council && threshold > deployment.council.length)
      throw new DeploymentFileError(
        `${source}: threshold ${threshold} exceeds the council's ${deployment.council.length}`,
      );
    deployment.threshold = threshold;
  }
  if (raw.safe !== undefined) {
    const safe = raw.safe as Record<string, unknown> | null;
    if (typeof safe !== "object" || safe === null)
      throw new DeploymentFileError(`${source}: safe must be { singleton, factory, handler }`);
    deployment.safe = {
      singleton: address(source, "safe.singleton", safe.singleton),
      factory: address(source, "safe.factory", safe.factory),
      handler: address(source, "safe.handler", safe.handler),
    };
  }
  return deployment;
}

/** Reads and validates a deployment file; a missing file says how to make one. */
export function readDeploymentFile(
  path: string,
  options: { require?: readonly ContractName[]; chainId?: number } = {},
): Deployment {
  if (!existsSync(path))
    throw new DeploymentFileError(
      `${path} does not exist: run \`npm start\` (local chain) or \`npm run deploy:base-sepolia\` (writes deployments/84532.json)`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new DeploymentFileError(`${path}: not valid JSON (${(error as Error).message})`, { cause: error });
  }
  return parseDeployment(parsed, path, options);
}

/** The committed deployment of `chainId` (deployments/<chainId>.json under `root`). */
export function loadDeployment(
  chainId: number,
  options: { root?: string; require?: readonly ContractName[] } = {},
): Deployment {
  return readDeploymentFile(deploymentFilePath(chainId, options.root), { chainId, require: options.require });
}

/** The file's text: validated, keys in a fixed order, two-space JSON and a final newline. */
export function formatDeployment(deployment: Deployment): string {
  const checked = parseDeployment(deployment, "deployment", { require: PROTOCOL_CONTRACTS });
  const ordered: Record<string, unknown> = {
    chainId: checked.chainId,
    network: checked.network,
    rpcUrl: checked.rpcUrl,
    explorer: checked.explorer,
    deploymentId: checked.deploymentId,
    deployer: checked.deployer,
    startBlock: checked.startBlock,
    contracts: checked.contracts,
    council: checked.council,
    threshold: checked.threshold,
    safe: checked.safe,
  };
  return JSON.stringify(ordered, null, 2) + "\n";
}

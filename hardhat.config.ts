import { createRequire } from "node:module";
import hardhatToolboxViem from "@nomicfoundation/hardhat-toolbox-viem";
import { configVariable, defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);

/**
 * Solidity is compiled offline by the npm `solc` package (soljson.js): no compiler download.
 * Keep SOLC_VERSION equal to the exact version of `solc` in package.json.
 */
const SOLC_VERSION = "0.8.30";

/**
 * Verification (scripts/verify-deployment.ts, `hardhat ignition verify <id> --network baseSepolia`):
 * Blockscout needs no API key, so a deployment with only BASE_SEPOLIA_RPC_URL and
 * DEPLOYER_PRIVATE_KEY is verified there; Etherscan (Basescan) joins when ETHERSCAN_API_KEY is in
 * the environment. X0T_VERIFY_PROVIDERS (comma-separated: blockscout, etherscan, sourcify) picks
 * them explicitly, e.g. "blockscout,etherscan" with the key in Hardhat's keystore.
 * X0T_ETHERSCAN_API_URL / X0T_BLOCKSCOUT_API_URL / X0T_SOURCIFY_API_URL replace the explorers' API
 * endpoints (test/ops points them at a local explorer; nothing else should).
 */
const verifyProviders = new Set(
  (process.env.X0T_VERIFY_PROVIDERS ?? `blockscout${process.env.ETHERSCAN_API_KEY ? ",etherscan" : ""}`)
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== ""),
);
for (const p of verifyProviders)
  if (!["blockscout", "etherscan", "sourcify"].includes(p))
    throw new Error(`X0T_VERIFY_PROVIDERS: unknown provider "${p}" (expected blockscout, etherscan, sourcify)`);
const explorerApi = (variable: string) => (process.env[variable] ? { apiUrl: process.env[variable] } : {});

export default defineConfig({
  plugins: [hardhatToolboxViem],
  solidity: {
    // Artifacts of library contracts that we deploy as they are.
    npmFilesToBuild: ["@openzeppelin/contracts/governance/TimelockController.sol"],
    profiles: {
      default: {
        version: SOLC_VERSION,
        path: require.resolve("solc/soljson.js"),
        settings: {
          optimizer: { enabled: true, runs: 10_000 },
          evmVersion: "prague",
        },
      },
    },
  },
  paths: {
    ignition: "deploy/ignition",
    tests: {
      nodejs: "test",
      solidity: "test/contracts",
    },
  },
  test: {
    solidity: {
      fuzz: { runs: 512 },
      invariant: { runs: 48, depth: 64, failOnRevert: false },
    },
  },
  networks: {
    hardhatMainnet: { type: "edr-simulated", chainType: "l1" },
    baseSepolia: {
      type: "http",
      chainType: "op",
      chainId: 84532,
      url: configVariable("BASE_SEPOLIA_RPC_URL"),
      // X0T_READ_ONLY=1 (set by scripts/verify-deployment.ts): no account, so verifying never
      // needs, or holds, the deployer's key.
      accounts: process.env.X0T_READ_ONLY === "1" ? [] : [configVariable("DEPLOYER_PRIVATE_KEY")],
    },
  },
  chainDescriptors: {
    84532: {
      name: "Base Sepolia",
      blockExplorers: {
        etherscan: explorerApi("X0T_ETHERSCAN_API_URL"),
        blockscout: explorerApi("X0T_BLOCKSCOUT_API_URL"),
      },
    },
  },
  verify: {
    etherscan: verifyProviders.has("etherscan") ? { apiKey: configVariable("ETHERSCAN_API_KEY") } : { enabled: false },
    blockscout: { enabled: verifyProviders.has("blockscout") },
    sourcify: {
      enabled: verifyProviders.has("sourcify"),
      ...(process.env.X0T_SOURCIFY_API_URL ? { apiUrl: process.env.X0T_SOURCIFY_API_URL } : {}),
    },
  },
});

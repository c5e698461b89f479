import { createRequire } from "node:module";
import hardhatToolboxViem from "@nomicfoundation/hardhat-toolbox-viem";
import { configVariable, defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);

/**
 * Solidity is compiled offline by the npm `solc` package (soljson.js): no compiler download.
 * Keep SOLC_VERSION equal to the exact version of `solc` in package.json.
 */
const SOLC_VERSION = "0.8.30";

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
      accounts: [configVariable("DEPLOYER_PRIVATE_KEY")],
    },
  },
  verify: {
    etherscan: { apiKey: configVariable("ETHERSCAN_API_KEY") },
  },
});

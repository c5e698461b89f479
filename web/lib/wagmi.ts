/**
 * The one wagmi config: the local Hardhat chain (31337, its RPC URL from the deployment file) and
 * Base Sepolia (84532). Wallets are found through EIP-6963 discovery (wagmi's default), with the
 * generic injected connector as a fallback for wallets that only set window.ethereum.
 */
import { createConfig, http, type Config } from "wagmi";
import { injected } from "wagmi/connectors";
import { baseSepolia } from "viem/chains";
import { defineChain, type Chain } from "viem";
import type { Deployment } from "./types";

export const LOCAL_CHAIN_ID = 31337;

export function localChain(rpcUrl: string): Chain {
  return defineChain({
    id: LOCAL_CHAIN_ID,
    name: "Local Hardhat",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
    testnet: true,
  });
}

export function makeWagmiConfig(deployments: Deployment[]): Config {
  const local = deployments.find((d) => d.chainId === LOCAL_CHAIN_ID);
  const localRpc = local?.rpcUrl ?? process.env.NEXT_PUBLIC_LOCAL_RPC_URL ?? "http://127.0.0.1:8545";
  const sepoliaRpc = process.env.NEXT_PUBLIC_BASE_SEPOLIA_RPC_URL;
  const chains = [localChain(localRpc), baseSepolia] as const;
  return createConfig({
    chains,
    connectors: [injected({ shimDisconnect: true })],
    multiInjectedProviderDiscovery: true,
    ssr: true,
    transports: {
      [LOCAL_CHAIN_ID]: http(localRpc),
      // Only used once the user switches to Base Sepolia; a configured RPC, else the public one.
      [baseSepolia.id]: http(sepoliaRpc),
    },
  });
}

/** The block explorer page of a transaction or address, where the chain has a public explorer. */
export function explorerUrl(chainId: number, kind: "tx" | "address", value: string): string | undefined {
  if (chainId === baseSepolia.id) return `https://sepolia.basescan.org/${kind}/${value}`;
  return undefined;
}

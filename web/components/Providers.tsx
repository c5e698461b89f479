"use client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createContext, useContext, useState, type ReactNode } from "react";
import { useChainId, WagmiProvider } from "wagmi";
import { makeWagmiConfig } from "@/lib/wagmi";
import type { Deployment } from "@/lib/types";

const DeploymentsContext = createContext<Deployment[]>([]);

export function Providers({ deployments, children }: { deployments: Deployment[]; children: ReactNode }) {
  const [config] = useState(() => makeWagmiConfig(deployments));
  const [queryClient] = useState(() => new QueryClient({ defaultOptions: { queries: { retry: 1 } } }));
  return (
    <DeploymentsContext.Provider value={deployments}>
      <WagmiProvider config={config}>
        <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>
      </WagmiProvider>
    </DeploymentsContext.Provider>
  );
}

/** The contracts on the chain the app is on, or undefined when nothing is deployed there. */
export function useDeployment(): Deployment | undefined {
  const chainId = useChainId();
  return useContext(DeploymentsContext).find((d) => d.chainId === chainId);
}

export function useDeployments(): Deployment[] {
  return useContext(DeploymentsContext);
}

"use client";
import { useEffect, useState, type ReactNode } from "react";
import { useAccount, useChainId } from "wagmi";
import type { Address } from "viem";
import { useDeployment } from "./Providers";
import type { ContractName } from "@/lib/types";

export type Contracts = Record<ContractName, Address>;

/** Renders its children only with the protocol deployed on the chain (and, if asked, a wallet). */
export function WithDeployment({
  wallet = true,
  children,
}: {
  wallet?: boolean;
  children: (c: { contracts: Contracts; account?: Address; chainId: number }) => ReactNode;
}) {
  const [mounted, setMounted] = useState(false);
  useEffect(() => setMounted(true), []);
  const deployment = useDeployment();
  const chainId = useChainId();
  const { address, chainId: walletChain } = useAccount();
  if (!mounted) return <p className="hint">Loading…</p>;
  if (!deployment)
    return (
      <p className="warn" role="alert">
        The protocol is not deployed on chain {chainId} in this app's configuration. Pick another chain
        {chainId === 31337 ? " or run npm start, which deploys it locally" : ""}.
      </p>
    );
  if (wallet && !address) return <p className="hint">Connect a wallet to continue.</p>;
  if (wallet && walletChain !== chainId) return <p className="warn">Switch your wallet to chain {chainId}.</p>;
  return <>{children({ contracts: deployment.contracts as Contracts, account: address, chainId })}</>;
}

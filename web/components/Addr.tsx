"use client";
import { useChainId } from "wagmi";
import { explorerUrl } from "@/lib/wagmi";

/** An address, shortened, linking to the chain's explorer where it has one. */
export function Addr({ address, full = false }: { address: string; full?: boolean }) {
  const chainId = useChainId();
  const text = full ? address : `${address.slice(0, 6)}…${address.slice(-4)}`;
  const url = explorerUrl(chainId, "address", address);
  return url ? (
    <a href={url} target="_blank" rel="noreferrer" title={address} className="mono">
      {text}
    </a>
  ) : (
    <span title={address} className="mono">
      {text}
    </span>
  );
}

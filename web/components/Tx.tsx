"use client";
import { useState } from "react";
import type { Hex } from "viem";
import { useChainId, useConfig } from "wagmi";
import { waitForTransactionReceipt } from "wagmi/actions";
import { useQueryClient } from "@tanstack/react-query";
import { describeError } from "@/lib/errors";
import { explorerUrl } from "@/lib/wagmi";

export type TxState =
  | { phase: "idle" }
  | { phase: "signing"; label: string }
  | { phase: "pending"; label: string; hash: Hex }
  | { phase: "confirmed"; label: string; hash: Hex; block: bigint }
  | { phase: "failed"; label: string; hash?: Hex; reason: string };

/**
 * Runs one action that ends in a transaction: pending (wallet, then chain) → confirmed or failed
 * with the revert decoded in words. Reads refresh once it is mined.
 */
export function useTx() {
  const [state, setState] = useState<TxState>({ phase: "idle" });
  // wagmi/actions rather than usePublicClient: the decorated client pulls all of viem into the page.
  const config = useConfig();
  const chainId = useChainId();
  const queryClient = useQueryClient();
  async function run(label: string, send: (step: (what: string) => void) => Promise<Hex>) {
    let hash: Hex | undefined;
    try {
      setState({ phase: "signing", label });
      hash = await send((what) => setState({ phase: "signing", label: what }));
      setState({ phase: "pending", label, hash });
      const receipt = await waitForTransactionReceipt(config, { hash, chainId });
      if (receipt.status !== "success") throw new Error("the transaction reverted");
      setState({ phase: "confirmed", label, hash, block: receipt.blockNumber });
      await queryClient.invalidateQueries();
      return true;
    } catch (error) {
      setState({ phase: "failed", label, hash, reason: describeError(error) });
      return false;
    }
  }
  return { state, run, busy: state.phase === "signing" || state.phase === "pending" };
}

export function TxStatus({ state }: { state: TxState }) {
  const chainId = useChainId();
  if (state.phase === "idle") return null;
  const link = "hash" in state && state.hash ? explorerUrl(chainId, "tx", state.hash) : undefined;
  const hashView =
    "hash" in state && state.hash ? (
      link ? (
        <a href={link} target="_blank" rel="noreferrer" className="mono">
          {state.hash.slice(0, 10)}… on Basescan
        </a>
      ) : (
        <span className="mono" title={state.hash}>
          {state.hash.slice(0, 10)}… (local chain: no public explorer)
        </span>
      )
    ) : null;
  return (
    <p className={`tx tx-${state.phase}`} role="status" aria-live="polite" data-testid="tx-status">
      {state.phase === "signing" && <>{state.label}: waiting for your wallet…</>}
      {state.phase === "pending" && (
        <>
          {state.label}: pending… {hashView}
        </>
      )}
      {state.phase === "confirmed" && (
        <>
          {state.label}: confirmed in block {state.block.toString()}. {hashView}
        </>
      )}
      {state.phase === "failed" && (
        <>
          {state.label}: failed. {state.reason} {hashView}
        </>
      )}
    </p>
  );
}

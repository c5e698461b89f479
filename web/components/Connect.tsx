"use client";
import { useAccount, useChainId, useChains, useConnect, useConnectors, useDisconnect, useSwitchChain } from "wagmi";
import { useEffect, useState } from "react";
import { useDeployments } from "./Providers";
import { Addr } from "./Addr";

/** Connect an injected wallet (EIP-6963 discovered ones first), show the account, switch chain. */
export function Connect() {
  const [mounted, setMounted] = useState(false);
  useEffect(() => setMounted(true), []);
  const { address, status, chainId: walletChain } = useAccount();
  const appChain = useChainId();
  const chains = useChains();
  const connectors = useConnectors();
  const { connect, error, isPending } = useConnect();
  const { disconnect } = useDisconnect();
  const { switchChain, isPending: switching } = useSwitchChain();
  const deployments = useDeployments();
  if (!mounted) return <div className="connect" />;

  // Discovered (EIP-6963) wallets have an rdns; the generic injected one only if nothing was found.
  const discovered = connectors.filter((c) => c.id !== "injected");
  const shown = discovered.length ? discovered : connectors;

  return (
    <div className="connect">
      <label className="chain">
        <span>Chain</span>
        <select
          value={appChain}
          disabled={switching}
          onChange={(e) => switchChain({ chainId: Number(e.target.value) })}
          aria-label="Chain"
        >
          {chains.map((c) => (
            <option key={c.id} value={c.id}>
              {c.name} ({c.id}){deployments.some((d) => d.chainId === c.id) ? "" : " – not deployed"}
            </option>
          ))}
        </select>
      </label>
      {status === "connected" && address ? (
        <>
          <span className="account" data-testid="account">
            <Addr address={address} />
          </span>
          {walletChain !== appChain && (
            <span className="warn" role="alert">
              Wallet on another chain ({walletChain})
            </span>
          )}
          <button type="button" onClick={() => disconnect()}>
            Disconnect
          </button>
        </>
      ) : shown.length === 0 ? (
        <span className="warn">No browser wallet found: install one (e.g. MetaMask or Rabby).</span>
      ) : (
        shown.map((c) => (
          <button
            type="button"
            key={c.uid}
            disabled={isPending}
            onClick={() => connect({ connector: c, chainId: appChain })}
          >
            Connect {c.name}
          </button>
        ))
      )}
      {error && (
        <span className="error" role="alert">
          {error.message.split("\n")[0]}
        </span>
      )}
    </div>
  );
}

"use client";
/** The treasury Safe, read-only: balances, owners, threshold, modules, recent X0T transfers. */
import { useQuery } from "@tanstack/react-query";
import { type Address, getAbiItem } from "viem";
import { getBalance, getLogs } from "viem/actions";
import { useConfig, useReadContracts } from "wagmi";
import { getClient } from "wagmi/actions";
import { x0tAbi } from "@/lib/abi";
import { safeAbi } from "@/lib/generated/governance";
import { fmtX0T } from "@/lib/format";
import { WithDeployment, type Contracts } from "./NeedWallet";
import { Addr } from "./Addr";

const SENTINEL = "0x0000000000000000000000000000000000000001";

export function TreasuryPanel() {
  return (
    <WithDeployment wallet={false}>
      {({ contracts, chainId }) => <Treasury contracts={contracts} chainId={chainId} />}
    </WithDeployment>
  );
}

function Treasury({ contracts, chainId }: { contracts: Contracts; chainId: number }) {
  const config = useConfig();
  const safe = { address: contracts.TreasurySafe, abi: safeAbi, chainId } as const;
  const reads = useReadContracts({
    contracts: [
      { ...safe, functionName: "getOwners" },
      { ...safe, functionName: "getThreshold" },
      { ...safe, functionName: "getModulesPaginated", args: [SENTINEL, 10n] },
      { ...safe, functionName: "nonce" },
      { address: contracts.X0T, abi: x0tAbi, chainId, functionName: "balanceOf", args: [contracts.TreasurySafe] },
    ],
  }).data;
  const owners = reads?.[0]?.result as readonly Address[] | undefined;
  const threshold = reads?.[1]?.result as bigint | undefined;
  const modules = (reads?.[2]?.result as readonly [readonly Address[], Address] | undefined)?.[0];
  const nonce = reads?.[3]?.result as bigint | undefined;
  const x0t = reads?.[4]?.result as bigint | undefined;
  const eth = useQuery({
    queryKey: ["eth", chainId, contracts.TreasurySafe],
    queryFn: () => getBalance(getClient(config, { chainId })!, { address: contracts.TreasurySafe }),
  }).data;
  const transfers = useQuery({
    queryKey: ["safe-transfers", chainId, contracts.TreasurySafe],
    queryFn: async () => {
      const client = getClient(config, { chainId })!;
      const event = getAbiItem({ abi: x0tAbi, name: "Transfer" });
      const range = { address: contracts.X0T, event, fromBlock: "earliest", toBlock: "latest" } as const;
      const [inbound, outbound] = await Promise.all([
        getLogs(client, { ...range, args: { to: contracts.TreasurySafe } }),
        getLogs(client, { ...range, args: { from: contracts.TreasurySafe } }),
      ]);
      return [...inbound, ...outbound]
        .sort((a, b) => Number((b.blockNumber ?? 0n) - (a.blockNumber ?? 0n)))
        .slice(0, 20);
    },
  });
  return (
    <>
      <section className="card" aria-labelledby="safe-h">
        <h2 id="safe-h">Safe</h2>
        <dl className="facts">
          <dt>Address</dt>
          <dd>
            <Addr address={contracts.TreasurySafe} full />
          </dd>
          <dt>X0T</dt>
          <dd data-testid="treasury-x0t">{fmtX0T(x0t, 2)}</dd>
          <dt>ETH</dt>
          <dd>{eth === undefined ? "…" : fmtX0T(eth).replace("X0T", "ETH")}</dd>
          <dt>Threshold</dt>
          <dd data-testid="threshold">
            {threshold === undefined || !owners ? "…" : `${threshold} of ${owners.length} owners`}
          </dd>
          <dt>Owners (council)</dt>
          <dd>
            {owners?.map((o) => (
              <div key={o}>
                <Addr address={o} full />
              </div>
            )) ?? "…"}
          </dd>
          <dt>Modules</dt>
          <dd>
            {modules?.map((m) => (
              <div key={m}>
                <Addr address={m} full />
                {m.toLowerCase() === contracts.TreasuryExecutor?.toLowerCase()
                  ? " (the DAO's executor: only the timelock calls it)"
                  : ""}
              </div>
            )) ?? "…"}
          </dd>
          <dt>Nonce</dt>
          <dd>{nonce?.toString() ?? "…"}</dd>
        </dl>
      </section>
      <section className="card" aria-labelledby="tr-h">
        <h2 id="tr-h">Recent X0T transfers</h2>
        {transfers.isError && <p className="error">This RPC does not serve the whole log history.</p>}
        {transfers.data && transfers.data.length > 0 ? (
          <div className="table-wrap">
            <table data-testid="transfers">
              <thead>
                <tr>
                  <th scope="col">Block</th>
                  <th scope="col">From</th>
                  <th scope="col">To</th>
                  <th scope="col">Amount</th>
                </tr>
              </thead>
              <tbody>
                {transfers.data.map((t) => (
                  <tr key={`${t.transactionHash}-${t.logIndex}`}>
                    <td>{t.blockNumber?.toString()}</td>
                    <td>
                      <Addr address={t.args.from!} />
                    </td>
                    <td>
                      <Addr address={t.args.to!} />
                    </td>
                    <td>{fmtX0T(t.args.value)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p>No transfers yet.</p>
        )}
      </section>
    </>
  );
}

"use client";
import { useState } from "react";
import { getAbiItem, type Hex } from "viem";
import { useConfig, useReadContract, useReadContracts } from "wagmi";
import { getClient } from "wagmi/actions";
import { getLogs } from "viem/actions";
import { useQuery } from "@tanstack/react-query";
import { epochRewardsAbi, relayerRegistryAbi, x0tAbi } from "@/lib/abi";
import { fmtX0T } from "@/lib/format";
import { WithDeployment, type Contracts } from "./NeedWallet";
import { Addr } from "./Addr";

const PAGE = 10;
const ZERO = "0x0000000000000000000000000000000000000000";

export function NetworkPanel() {
  return (
    <WithDeployment wallet={false}>
      {({ contracts, chainId }) => <Network contracts={contracts} chainId={chainId} />}
    </WithDeployment>
  );
}

function region(r: Hex) {
  return String.fromCharCode(parseInt(r.slice(2, 4), 16), parseInt(r.slice(4, 6), 16));
}

function Network({ contracts, chainId }: { contracts: Contracts; chainId: number }) {
  const [page, setPage] = useState(0);
  const token = { address: contracts.X0T, abi: x0tAbi, chainId } as const;
  const registry = { address: contracts.RelayerRegistry, abi: relayerRegistryAbi, chainId } as const;
  const rewards = { address: contracts.EpochRewards, abi: epochRewardsAbi, chainId } as const;
  const stats = useReadContracts({
    contracts: [
      { ...token, functionName: "totalSupply" },
      { ...token, functionName: "cap" },
      { ...token, functionName: "burnBps" },
      { ...registry, functionName: "nodeCount" },
      { ...registry, functionName: "minStake" },
      { ...rewards, functionName: "currentEpochEnd" },
    ],
  }).data;
  const supply = stats?.[0]?.result as bigint | undefined;
  const cap = stats?.[1]?.result as bigint | undefined;
  const burnBps = stats?.[2]?.result as number | undefined;
  const count = stats?.[3]?.result as bigint | undefined;
  const minStake = stats?.[4]?.result as bigint | undefined;
  const epochEnd = stats?.[5]?.result as readonly [bigint, bigint] | undefined;
  const nodes = useReadContract({
    ...registry,
    functionName: "nodesPage",
    args: [BigInt(page * PAGE), BigInt(PAGE)],
  }).data;
  const config = useConfig();
  const client = getClient(config, { chainId });
  // Total burned: every burn is a Transfer to the zero address (transfer fee, credit settlement, burn()).
  const burned = useQuery({
    queryKey: ["burned", chainId, contracts.X0T],
    enabled: !!client,
    queryFn: async () => {
      const logs = await getLogs(client!, {
        address: contracts.X0T,
        event: getAbiItem({ abi: x0tAbi, name: "Transfer" }),
        args: { to: ZERO },
        fromBlock: "earliest",
        toBlock: "latest",
      });
      return logs.reduce((sum, l) => sum + (l.args.value ?? 0n), 0n);
    },
  });
  const pages = count === undefined ? 1 : Math.max(1, Math.ceil(Number(count) / PAGE));
  return (
    <>
      <section className="card" aria-labelledby="sup-h">
        <h2 id="sup-h">Token and epoch</h2>
        <dl className="facts">
          <dt>Total supply</dt>
          <dd data-testid="supply">{fmtX0T(supply, 2)}</dd>
          <dt>Cap</dt>
          <dd>{fmtX0T(cap, 0)}</dd>
          <dt>Total burned</dt>
          <dd data-testid="burned">
            {burned.isError ? "unavailable (this RPC does not serve the whole log history)" : fmtX0T(burned.data)}
          </dd>
          <dt>Transfer burn</dt>
          <dd>{burnBps === undefined ? "…" : `${burnBps / 100}%`}</dd>
          <dt>Epoch</dt>
          <dd data-testid="epoch">
            {epochEnd === undefined
              ? "…"
              : `${epochEnd[0]} (ends ${new Date(Number(epochEnd[1]) * 1000).toISOString().replace(".000Z", "Z")})`}
          </dd>
          <dt>Minimum stake</dt>
          <dd>{fmtX0T(minStake)}</dd>
        </dl>
      </section>
      <section className="card" aria-labelledby="rel-h">
        <h2 id="rel-h">Relayers ({count?.toString() ?? "…"})</h2>
        {nodes && nodes[0].length > 0 ? (
          <div className="table-wrap">
            <table data-testid="relayers">
              <thead>
                <tr>
                  <th scope="col">Operator</th>
                  <th scope="col">Region</th>
                  <th scope="col">Endpoint</th>
                  <th scope="col">Stake</th>
                  <th scope="col">Active</th>
                </tr>
              </thead>
              <tbody>
                {nodes[0].map((op, i) => {
                  const n = nodes[1][i]!;
                  return (
                    <tr key={op}>
                      <td>
                        <Addr address={op} />
                      </td>
                      <td>{region(n.region)}</td>
                      <td className="mono">{n.endpoint}</td>
                      <td>{fmtX0T(n.stake, 0)}</td>
                      <td>{minStake !== undefined && n.stake >= minStake ? "yes" : "no"}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        ) : (
          <p>No relayer has registered yet.</p>
        )}
        <div className="row">
          <button type="button" className="secondary" disabled={page === 0} onClick={() => setPage(page - 1)}>
            Previous
          </button>
          <span>
            Page {page + 1} of {pages}
          </span>
          <button type="button" className="secondary" disabled={page + 1 >= pages} onClick={() => setPage(page + 1)}>
            Next
          </button>
        </div>
      </section>
    </>
  );
}

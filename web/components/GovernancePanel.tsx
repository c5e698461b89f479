"use client";
/**
 * Minimal on purpose (the governor is still changing): proposals from ProposalCreated events with
 * their state and tally, the connected account's sqrt weight, vote, queue and execute.
 */
import { useQuery } from "@tanstack/react-query";
import { type Address, getAbiItem, type Hex, keccak256, toBytes } from "viem";
import { getLogs } from "viem/actions";
import { useConfig, useReadContract, useReadContracts, useWriteContract } from "wagmi";
import { getClient } from "wagmi/actions";
import { x0tAbi } from "@/lib/abi";
import { quadraticGovernorAbi, voterRegistryAbi } from "@/lib/generated/governance";
import { fmtX0T } from "@/lib/format";
import { TxStatus, useTx } from "./Tx";
import { WithDeployment, type Contracts } from "./NeedWallet";
import { Addr } from "./Addr";

const STATES = ["Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"];
// Weights are sqrt(X0T wei): 1 X0T of votes is 1e9 units.
const fmtWeight = (w: bigint | undefined) =>
  w === undefined ? "…" : (Number(w) / 1e9).toLocaleString("en-US", { maximumFractionDigits: 3 });

export function GovernancePanel() {
  return (
    <WithDeployment>
      {({ contracts, account, chainId }) => <Governance contracts={contracts} account={account!} chainId={chainId} />}
    </WithDeployment>
  );
}

function Governance({ contracts, account, chainId }: { contracts: Contracts; account: Address; chainId: number }) {
  const governor = { address: contracts.QuadraticGovernor, abi: quadraticGovernorAbi, chainId } as const;
  const token = { address: contracts.X0T, abi: x0tAbi, chainId } as const;
  const { state, run, busy } = useTx();
  const { writeContractAsync } = useWriteContract();
  const clock = useReadContract({ ...governor, functionName: "clock" }).data;
  const reads = useReadContracts({
    contracts: [
      { ...token, functionName: "getVotes", args: [account] },
      { ...token, functionName: "delegates", args: [account] },
      {
        address: contracts.VoterRegistry,
        abi: voterRegistryAbi,
        chainId,
        functionName: "isRegistered",
        args: [account],
      },
      { ...governor, functionName: "getVotes", args: [account, BigInt((clock ?? 1) - 1)] },
      { ...governor, functionName: "proposalThreshold" },
      { ...governor, functionName: "quorum", args: [BigInt((clock ?? 1) - 1)] },
    ],
    query: { enabled: clock !== undefined },
  }).data;
  const votes = reads?.[0]?.result as bigint | undefined;
  const delegate = reads?.[1]?.result as Address | undefined;
  const registered = reads?.[2]?.result as boolean | undefined;
  const weight = reads?.[3]?.result as bigint | undefined;
  const threshold = reads?.[4]?.result as bigint | undefined;
  const quorum = reads?.[5]?.result as bigint | undefined;
  return (
    <>
      <section className="card" aria-labelledby="w-h">
        <h2 id="w-h">Your voting weight</h2>
        <dl className="facts">
          <dt>Delegated X0T votes</dt>
          <dd>{fmtX0T(votes)}</dd>
          <dt>Delegate</dt>
          <dd>{delegate ? <Addr address={delegate} /> : "…"}</dd>
          <dt>Registered voter</dt>
          <dd data-testid="registered">
            {registered === undefined ? "…" : registered ? "yes" : "no (weight 0 until a registrar adds you)"}
          </dd>
          <dt>Weight (sqrt of votes)</dt>
          <dd data-testid="weight">{fmtWeight(weight)}</dd>
          <dt>Proposal threshold / quorum</dt>
          <dd>
            {fmtWeight(threshold)} / {fmtWeight(quorum)}
          </dd>
        </dl>
        <div className="row">
          <button
            type="button"
            disabled={busy || delegate === account}
            onClick={() =>
              void run("Delegate to yourself", () =>
                writeContractAsync({ ...token, functionName: "delegate", args: [account] }),
              )
            }
          >
            Delegate your votes to yourself
          </button>
        </div>
        <TxStatus state={state} />
      </section>
      <Proposals contracts={contracts} chainId={chainId} account={account} />
    </>
  );
}

interface Proposal {
  id: bigint;
  proposer: Address;
  targets: readonly Address[];
  values: readonly bigint[];
  calldatas: readonly Hex[];
  description: string;
}

function Proposals({ contracts, chainId, account }: { contracts: Contracts; chainId: number; account: Address }) {
  const config = useConfig();
  const governor = { address: contracts.QuadraticGovernor, abi: quadraticGovernorAbi, chainId } as const;
  const { state, run, busy } = useTx();
  const { writeContractAsync } = useWriteContract();
  const created = useQuery({
    queryKey: ["proposals", chainId, contracts.QuadraticGovernor],
    queryFn: async (): Promise<Proposal[]> => {
      const logs = await getLogs(getClient(config, { chainId })!, {
        address: contracts.QuadraticGovernor,
        event: getAbiItem({ abi: quadraticGovernorAbi, name: "ProposalCreated" }),
        fromBlock: "earliest",
        toBlock: "latest",
      });
      return logs.reverse().map((l) => ({
        id: l.args.proposalId!,
        proposer: l.args.proposer!,
        targets: l.args.targets!,
        values: l.args.values!,
        calldatas: l.args.calldatas!,
        description: l.args.description!,
      }));
    },
  });
  const list = created.data ?? [];
  const details = useReadContracts({
    contracts: list.flatMap((p) => [
      { ...governor, functionName: "state" as const, args: [p.id] as const },
      { ...governor, functionName: "proposalVotes" as const, args: [p.id] as const },
      { ...governor, functionName: "hasVoted" as const, args: [p.id, account] as const },
    ]),
    query: { enabled: list.length > 0 },
  }).data;
  const act = (p: Proposal, what: "queue" | "execute") =>
    run(`${what === "queue" ? "Queue" : "Execute"} proposal`, () =>
      writeContractAsync({
        ...governor,
        functionName: what,
        args: [p.targets, p.values, p.calldatas, keccak256(toBytes(p.description))],
      }),
    );
  return (
    <section className="card" aria-labelledby="p-h">
      <h2 id="p-h">Proposals</h2>
      {created.isError && <p className="error">Could not read the proposals from this RPC.</p>}
      {list.length === 0 ? (
        <p>No proposal yet.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="proposals">
            <thead>
              <tr>
                <th scope="col">Proposal</th>
                <th scope="col">State</th>
                <th scope="col">For / against / abstain (sqrt)</th>
                <th scope="col">Act</th>
              </tr>
            </thead>
            <tbody>
              {list.map((p, i) => {
                const s = details?.[3 * i]?.result as number | undefined;
                const v = details?.[3 * i + 1]?.result as readonly [bigint, bigint, bigint] | undefined;
                const voted = details?.[3 * i + 2]?.result as boolean | undefined;
                const name = STATES[s ?? -1] ?? "…";
                return (
                  <tr key={p.id.toString()}>
                    <td>
                      {p.description.split("\n")[0]}
                      <br />
                      <span className="hint">
                        by <Addr address={p.proposer} />
                      </span>
                    </td>
                    <td data-testid="proposal-state">{name}</td>
                    <td data-testid="tally">
                      {v ? `${fmtWeight(v[1])} / ${fmtWeight(v[0])} / ${fmtWeight(v[2])}` : "…"}
                    </td>
                    <td>
                      {name === "Active" && voted && "You voted"}
                      {name === "Active" && voted === false && (
                        <span className="row">
                          {(["Against", "For", "Abstain"] as const).map((label, support) => (
                            <button
                              type="button"
                              key={label}
                              disabled={busy}
                              onClick={() =>
                                void run(`Vote ${label}`, () =>
                                  writeContractAsync({ ...governor, functionName: "castVote", args: [p.id, support] }),
                                )
                              }
                            >
                              {label}
                            </button>
                          ))}
                        </span>
                      )}
                      {name === "Succeeded" && (
                        <button type="button" disabled={busy} onClick={() => void act(p, "queue")}>
                          Queue
                        </button>
                      )}
                      {name === "Queued" && (
                        <button type="button" disabled={busy} onClick={() => void act(p, "execute")}>
                          Execute
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <TxStatus state={state} />
    </section>
  );
}

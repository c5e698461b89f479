"use client";
/**
 * Off-chain (Snapshot) proposals of the project's space, with sign-to-vote: the hub's EIP-712 Vote
 * message (domain "snapshot" / "0.1.4", as snapshot.js signs it) signed by the wallet through viem
 * and posted to the hub's /api/msg, without snapshot.js's ~1.8 MB bundle. Only when a hub and a
 * space are configured (X0T_SNAPSHOT_HUB, X0T_SNAPSHOT_SPACE): no request leaves otherwise.
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { type Address, isHex } from "viem";
import { useAccount, useSignTypedData } from "wagmi";

interface SnapshotProposal {
  id: string;
  title: string;
  state: string;
  choices: string[];
  scores: number[];
  end: number;
}

const VOTE_FIELDS = (proposalType: "bytes32" | "string") =>
  ({
    Vote: [
      { name: "from", type: "address" },
      { name: "space", type: "string" },
      { name: "timestamp", type: "uint64" },
      { name: "proposal", type: proposalType },
      { name: "choice", type: "uint32" },
      { name: "reason", type: "string" },
      { name: "app", type: "string" },
      { name: "metadata", type: "string" },
    ],
  }) as const;

export function SnapshotPanel({ hub, space }: { hub?: string; space?: string }) {
  if (!hub || !space)
    return (
      <section className="card" aria-labelledby="snap-h">
        <h2 id="snap-h">Snapshot proposals</h2>
        <p className="hint">
          Not configured: set X0T_SNAPSHOT_HUB (e.g. https://testnet.hub.snapshot.org) and X0T_SNAPSHOT_SPACE where the
          app runs to list the space&apos;s proposals and vote by signature.
        </p>
      </section>
    );
  return <Snapshot hub={hub.replace(/\/$/, "")} space={space} />;
}

function Snapshot({ hub, space }: { hub: string; space: string }) {
  const { address } = useAccount();
  const queryClient = useQueryClient();
  const { signTypedDataAsync } = useSignTypedData();
  const [status, setStatus] = useState<{ ok: boolean; text: string }>();
  const proposals = useQuery({
    queryKey: ["snapshot", hub, space],
    retry: 0,
    queryFn: async (): Promise<SnapshotProposal[]> => {
      const query = `query { proposals(first: 10, where: { space: ${JSON.stringify(space)} }, orderBy: "created", orderDirection: desc) { id title state choices scores end } }`;
      const res = await fetch(`${hub}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query }),
      });
      if (!res.ok) throw new Error(`hub answered ${res.status}`);
      return ((await res.json()) as { data: { proposals: SnapshotProposal[] } }).data.proposals;
    },
  });

  async function vote(p: SnapshotProposal, choice: number) {
    if (!address) return;
    setStatus({ ok: true, text: `Vote "${p.choices[choice - 1]}": sign the vote in your wallet…` });
    try {
      const byBytes = isHex(p.id) && p.id.length === 66;
      const message = {
        from: address as Address,
        space,
        timestamp: BigInt(Math.floor(Date.now() / 1000)),
        proposal: p.id,
        choice,
        reason: "",
        app: "x0tta6bl4",
        metadata: "{}",
      };
      const domain = { name: "snapshot", version: "0.1.4" } as const;
      const types = VOTE_FIELDS(byBytes ? "bytes32" : "string");
      const sig = await signTypedDataAsync({ domain, types, primaryType: "Vote", message } as never);
      const res = await fetch(`${hub}/api/msg`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ address, sig, data: { domain, types, message } }, (_k, v) =>
          typeof v === "bigint" ? Number(v) : v,
        ),
      });
      if (!res.ok) throw new Error(`the hub refused the vote: ${(await res.text()).slice(0, 200)}`);
      setStatus({ ok: true, text: `Vote "${p.choices[choice - 1]}" recorded by the hub.` });
      await queryClient.invalidateQueries({ queryKey: ["snapshot", hub, space] });
    } catch (error) {
      setStatus({
        ok: false,
        text: `Vote failed: ${error instanceof TypeError ? `the Snapshot hub at ${hub} is unreachable` : (error as Error).message.split("\n")[0]}`,
      });
    }
  }

  return (
    <section className="card" aria-labelledby="snap-h">
      <h2 id="snap-h">Snapshot proposals ({space})</h2>
      {proposals.isError ? (
        <p className="warn" role="alert" data-testid="snapshot-error">
          The Snapshot hub at {hub} is unreachable, so off-chain proposals cannot be shown; on-chain governance above is
          unaffected.
        </p>
      ) : !proposals.data ? (
        <p className="hint">Loading from {hub}…</p>
      ) : proposals.data.length === 0 ? (
        <p>No Snapshot proposal in this space.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="snapshot-proposals">
            <thead>
              <tr>
                <th scope="col">Proposal</th>
                <th scope="col">State</th>
                <th scope="col">Scores</th>
                <th scope="col">Vote</th>
              </tr>
            </thead>
            <tbody>
              {proposals.data.map((p) => (
                <tr key={p.id}>
                  <td>{p.title}</td>
                  <td>{p.state}</td>
                  <td data-testid="snapshot-scores">
                    {p.choices.map((c, i) => `${c} ${(p.scores[i] ?? 0).toLocaleString("en-US")}`).join(" · ")}
                  </td>
                  <td>
                    {p.state === "active" && address ? (
                      <span className="row">
                        {p.choices.map((c, i) => (
                          <button
                            type="button"
                            className="secondary"
                            key={c}
                            aria-label={`${c} on Snapshot`}
                            onClick={() => void vote(p, i + 1)}
                          >
                            {c}
                          </button>
                        ))}
                      </span>
                    ) : (
                      "—"
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {status && (
        <p className={status.ok ? "tx" : "tx tx-failed"} role="status" aria-live="polite" data-testid="snapshot-status">
          {status.text}
        </p>
      )}
    </section>
  );
}

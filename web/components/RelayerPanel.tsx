"use client";
import { useState } from "react";
import { SIGNER_CONSENT_TYPES } from "@x0tta6bl4/relayer/chain/registry";
import { PERMIT_TYPES } from "@x0tta6bl4/relayer/chain/permit";
import { type Address, type Hex, isAddress, isHex, parseSignature, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { useReadContract, useReadContracts, useSignTypedData, useWriteContract } from "wagmi";
import { epochRewardsAbi, relayerRegistryAbi, x0tAbi } from "@/lib/abi";
import { fmtX0T, parseAmount } from "@/lib/format";
import { TxStatus, useTx } from "./Tx";
import { WithDeployment, type Contracts } from "./NeedWallet";
import { Addr } from "./Addr";

const ZERO = "0x0000000000000000000000000000000000000000";
// The typed data the contracts verify, from the one definition the relayer uses too.
const CONSENT_TYPES = SIGNER_CONSENT_TYPES;

export function RelayerPanel() {
  return (
    <WithDeployment>
      {({ contracts, account, chainId }) => <Relayer contracts={contracts} account={account!} chainId={chainId} />}
    </WithDeployment>
  );
}

function Relayer({ contracts, account, chainId }: { contracts: Contracts; account: Address; chainId: number }) {
  const registry = { address: contracts.RelayerRegistry, abi: relayerRegistryAbi, chainId } as const;
  const token = { address: contracts.X0T, abi: x0tAbi, chainId } as const;
  const reads = useReadContracts({
    contracts: [
      { ...registry, functionName: "getNode", args: [account] },
      { ...registry, functionName: "isActive", args: [account] },
      { ...registry, functionName: "minStake" },
      { ...token, functionName: "balanceOf", args: [account] },
      { ...registry, functionName: "unbondingDelay" },
    ],
  });
  const node = reads.data?.[0]?.result;
  const active = reads.data?.[1]?.result as boolean | undefined;
  const minStake = reads.data?.[2]?.result as bigint | undefined;
  const balance = reads.data?.[3]?.result as bigint | undefined;
  const registered = node !== undefined && node.signer !== ZERO;
  return (
    <>
      <section className="card" aria-labelledby="node-h">
        <h2 id="node-h">Your node</h2>
        <dl className="facts">
          <dt>Your X0T</dt>
          <dd data-testid="balance">{fmtX0T(balance)}</dd>
          <dt>Minimum stake</dt>
          <dd>{fmtX0T(minStake)}</dd>
          <dt>Status</dt>
          <dd data-testid="node-status">
            {node === undefined
              ? "…"
              : !registered
                ? "Not registered"
                : active
                  ? "Registered, active"
                  : "Registered, inactive (stake below minimum)"}
          </dd>
          {registered && node && (
            <>
              <dt>Stake</dt>
              <dd data-testid="stake">{fmtX0T(node.stake)}</dd>
              <dt>Unbonding</dt>
              <dd data-testid="unbonding">
                {fmtX0T(node.unbonding)}
                {node.unbonding > 0n &&
                  `, withdrawable from ${new Date(Number(node.unbondingReleaseAt) * 1000).toISOString().replace(".000Z", "Z")}`}
              </dd>
              <dt>Signer</dt>
              <dd>
                <Addr address={node.signer} full />
              </dd>
              <dt>Endpoint</dt>
              <dd data-testid="endpoint">{node.endpoint}</dd>
              <dt>Region</dt>
              <dd data-testid="region">{hexToRegion(node.region)}</dd>
              <dt>Keys hash</dt>
              <dd className="mono">{node.keysHash}</dd>
              <dt>Registered</dt>
              <dd>{new Date(node.registeredAt * 1000).toISOString().replace(".000Z", "Z")}</dd>
            </>
          )}
        </dl>
      </section>
      {node !== undefined &&
        (registered ? (
          <StakeActions contracts={contracts} chainId={chainId} stake={node.stake} unbonding={node.unbonding} />
        ) : (
          <Register contracts={contracts} account={account} chainId={chainId} minStake={minStake} />
        ))}
      {registered && <Rewards contracts={contracts} account={account} chainId={chainId} />}
    </>
  );
}

function hexToRegion(region: Hex): string {
  const a = parseInt(region.slice(2, 4), 16);
  const b = parseInt(region.slice(4, 6), 16);
  return String.fromCharCode(a, b);
}

function Register({
  contracts,
  account,
  chainId,
  minStake,
}: {
  contracts: Contracts;
  account: Address;
  chainId: number;
  minStake?: bigint;
}) {
  const [endpoint, setEndpoint] = useState("");
  const [region, setRegion] = useState("");
  const [keysHash, setKeysHash] = useState("");
  const [signerKey, setSignerKey] = useState<Hex>();
  const [signerText, setSignerText] = useState("");
  const [consent, setConsent] = useState("");
  const [stakeText, setStakeText] = useState("");
  const { state, run, busy } = useTx();
  const { signTypedDataAsync } = useSignTypedData();
  const { writeContractAsync } = useWriteContract();
  const token = { address: contracts.X0T, abi: x0tAbi, chainId } as const;
  const tokenReads = useReadContracts({
    contracts: [
      { ...token, functionName: "name" },
      { ...token, functionName: "nonces", args: [account] },
    ],
  });
  const name = tokenReads.data?.[0]?.result as string | undefined;
  const nonce = tokenReads.data?.[1]?.result as bigint | undefined;
  const signer = signerKey ? privateKeyToAccount(signerKey).address : isAddress(signerText) ? signerText : undefined;
  const stake = stakeText === "" ? minStake : parseAmount(stakeText, 18);
  const regionOk = /^[A-Z]{2}$/.test(region);
  const ok =
    endpoint.length > 0 &&
    regionOk &&
    isHex(keysHash) &&
    keysHash.length === 66 &&
    signer &&
    stake &&
    name &&
    nonce !== undefined;

  async function register() {
    if (!ok || !signer || !stake || name === undefined || nonce === undefined) return;
    await run("Register and stake", async (step) => {
      let signerConsent: Hex;
      if (signerKey) {
        signerConsent = await privateKeyToAccount(signerKey).signTypedData({
          domain: {
            name: "x0tta6bl4 RelayerRegistry",
            version: "1",
            chainId,
            verifyingContract: contracts.RelayerRegistry,
          },
          types: CONSENT_TYPES,
          primaryType: "SignerConsent",
          message: { operator: account, signer },
        });
      } else if (isHex(consent)) signerConsent = consent;
      else throw new Error("Paste the signer's SignerConsent(operator, signer) signature, or generate a signer here.");
      step("Sign the permit for the stake");
      const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600);
      const sig = await signTypedDataAsync({
        domain: { name, version: "1", chainId, verifyingContract: contracts.X0T },
        types: PERMIT_TYPES,
        primaryType: "Permit",
        message: { owner: account, spender: contracts.RelayerRegistry, value: stake, nonce, deadline },
      });
      const { v, r, s } = parseSignature(sig);
      step("Register and stake");
      return writeContractAsync({
        address: contracts.RelayerRegistry,
        abi: relayerRegistryAbi,
        chainId,
        functionName: "registerWithPermit",
        args: [
          endpoint,
          toHex(region, { size: 2 }),
          keysHash as Hex,
          signer,
          signerConsent,
          stake,
          deadline,
          Number(v ?? 27n),
          r,
          s,
        ],
      });
    });
  }
  function download() {
    if (!signerKey) return;
    const blob = new Blob(
      [JSON.stringify({ address: privateKeyToAccount(signerKey).address, privateKey: signerKey }, null, 2)],
      {
        type: "application/json",
      },
    );
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "x0t-node-signer.json";
    a.click();
    URL.revokeObjectURL(a.href);
  }

  return (
    <section className="card" aria-labelledby="reg-h">
      <h2 id="reg-h">Register your node</h2>
      <p className="hint">
        The node&apos;s signer key must consent to sign for you (EIP-712 SignerConsent). Run <code>x0t relay</code> to
        get the node&apos;s endpoint and keys hash, or generate a signer here and give it to the node.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void register();
        }}
      >
        <label className="field">
          Endpoint (host:port)
          <input
            name="endpoint"
            value={endpoint}
            onChange={(e) => setEndpoint(e.target.value)}
            placeholder="relay.example.org:9001"
          />
        </label>
        <label className="field">
          Region (ISO code)
          <input
            name="region"
            value={region}
            onChange={(e) => setRegion(e.target.value.toUpperCase())}
            maxLength={2}
            placeholder="DE"
          />
        </label>
        <label className="field">
          Keys hash (sha256 of the node&apos;s public keys)
          <input name="keysHash" value={keysHash} onChange={(e) => setKeysHash(e.target.value)} placeholder="0x…" />
        </label>
        <label className="field">
          Stake (X0T)
          <input
            name="stake"
            value={stakeText}
            onChange={(e) => setStakeText(e.target.value)}
            placeholder={minStake === undefined ? "" : fmtX0T(minStake).replace(" X0T", "").replace(/,/g, "")}
            inputMode="decimal"
          />
        </label>
        {!signerKey && (
          <>
            <label className="field">
              Signer address
              <input value={signerText} onChange={(e) => setSignerText(e.target.value)} placeholder="0x…" />
            </label>
            <label className="field">
              Signer&apos;s consent (signature)
              <input value={consent} onChange={(e) => setConsent(e.target.value)} placeholder="0x…" />
            </label>
          </>
        )}
        <button type="button" className="secondary" onClick={() => setSignerKey(generatePrivateKey())}>
          {signerKey ? "New signer key" : "Generate a signer key"}
        </button>
        {signerKey && (
          <button type="button" className="secondary" onClick={download}>
            Download signer key
          </button>
        )}
        <button type="submit" disabled={busy || !ok}>
          Sign permit and register
        </button>
      </form>
      {signerKey && signer && (
        <p data-testid="signer">
          Signer: <Addr address={signer} full />
        </p>
      )}
      <TxStatus state={state} />
    </section>
  );
}

function StakeActions({
  contracts,
  chainId,
  stake,
  unbonding,
}: {
  contracts: Contracts;
  chainId: number;
  stake: bigint;
  unbonding: bigint;
}) {
  const [addText, setAddText] = useState("");
  const [unbondText, setUnbondText] = useState("");
  const { state, run, busy } = useTx();
  const { writeContractAsync } = useWriteContract();
  const registry = { address: contracts.RelayerRegistry, abi: relayerRegistryAbi, chainId } as const;
  const add = parseAmount(addText, 18);
  const out = parseAmount(unbondText, 18);
  return (
    <section className="card" aria-labelledby="stake-h">
      <h2 id="stake-h">Stake</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (add)
            void run("Add stake", async (step) => {
              step("Approve the stake");
              const approve = await writeContractAsync({
                address: contracts.X0T,
                abi: x0tAbi,
                chainId,
                functionName: "approve",
                args: [contracts.RelayerRegistry, add],
              });
              step(`Approve sent (${approve.slice(0, 10)}…); add stake`);
              return writeContractAsync({ ...registry, functionName: "addStake", args: [add] });
            });
        }}
      >
        <label className="field">
          Add stake (X0T)
          <input name="add" value={addText} onChange={(e) => setAddText(e.target.value)} inputMode="decimal" />
        </label>
        <button type="submit" disabled={busy || !add}>
          Approve and stake
        </button>
      </form>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (out) void run("Unbond", () => writeContractAsync({ ...registry, functionName: "unbond", args: [out] }));
        }}
      >
        <label className="field">
          Unbond (X0T, of {fmtX0T(stake)})
          <input name="unbond" value={unbondText} onChange={(e) => setUnbondText(e.target.value)} inputMode="decimal" />
        </label>
        <button type="submit" disabled={busy || !out}>
          Unbond
        </button>
      </form>
      <div className="row">
        <button
          type="button"
          disabled={busy}
          onClick={() => void run("Withdraw", () => writeContractAsync({ ...registry, functionName: "withdraw" }))}
        >
          Withdraw {fmtX0T(unbonding)} unbonded
        </button>
      </div>
      <TxStatus state={state} />
    </section>
  );
}

const LOOKBACK = 24;

function Rewards({ contracts, account, chainId }: { contracts: Contracts; account: Address; chainId: number }) {
  const rewards = { address: contracts.EpochRewards, abi: epochRewardsAbi, chainId } as const;
  const { state, run, busy } = useTx();
  const { writeContractAsync } = useWriteContract();
  const current = useReadContract({ ...rewards, functionName: "currentEpoch" }).data;
  const epochs: bigint[] = [];
  if (current !== undefined)
    for (let e = current > BigInt(LOOKBACK) ? current - BigInt(LOOKBACK) : 0n; e < current; e++) epochs.push(e);
  const pending = useReadContracts({
    contracts: epochs.map((e) => ({ ...rewards, functionName: "pendingReward" as const, args: [e, account] as const })),
    query: { enabled: epochs.length > 0 },
  }).data;
  const records = useReadContracts({
    contracts: epochs.map((e) => ({ ...rewards, functionName: "relayerEpoch" as const, args: [e, account] as const })),
    query: { enabled: epochs.length > 0 },
  }).data;
  const rows = epochs
    .map((e, i) => ({
      epoch: e,
      pending: (pending?.[i]?.result as bigint | undefined) ?? 0n,
      rec: records?.[i]?.result,
    }))
    .filter((r) => r.pending > 0n || (r.rec && (r.rec.base > 0n || r.rec.claimed)));
  const claimable = rows.filter((r) => r.pending > 0n).map((r) => r.epoch);
  const total = rows.reduce((s, r) => s + r.pending, 0n);
  return (
    <section className="card" aria-labelledby="rew-h">
      <h2 id="rew-h">Rewards</h2>
      <p className="hint">
        Current epoch {current?.toString() ?? "…"}; the last {LOOKBACK} epochs. Pending:{" "}
        <span data-testid="pending">{fmtX0T(total)}</span>
      </p>
      {rows.length === 0 ? (
        <p>No served cells or rewards in these epochs yet.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Epoch</th>
                <th scope="col">Base</th>
                <th scope="col">With uptime bonus</th>
                <th scope="col">Uptime bonus</th>
                <th scope="col">Pending</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.epoch.toString()}>
                  <td>{r.epoch.toString()}</td>
                  <td>{fmtX0T(r.rec?.base)}</td>
                  <td>{fmtX0T(r.rec?.boosted)}</td>
                  <td>{r.rec?.uptimeBonus ? "yes" : "no"}</td>
                  <td>{r.rec?.claimed ? "claimed" : fmtX0T(r.pending)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div className="row">
        <button
          type="button"
          disabled={busy || claimable.length === 0}
          onClick={() =>
            void run("Claim rewards", () =>
              writeContractAsync({ ...rewards, functionName: "claim", args: [account, claimable] }),
            )
          }
        >
          Claim {fmtX0T(total)}
        </button>
      </div>
      <TxStatus state={state} />
    </section>
  );
}

"use client";
import { useState } from "react";
import { CLIENT_KEY_TYPES } from "@x0tta6bl4/relayer/accounting/receipts";
import { PERMIT_TYPES } from "@x0tta6bl4/relayer/chain/permit";
import { type Address, isAddress, isHex, parseSignature, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { useReadContract, useReadContracts, useSignTypedData, useWriteContract } from "wagmi";
import { bandwidthCreditAbi, epochRewardsAbi, x0tAbi } from "@/lib/abi";
import { fmtGB, fmtX0T, GB, parseAmount } from "@/lib/format";
import { TxStatus, useTx } from "./Tx";
import { WithDeployment, type Contracts } from "./NeedWallet";
import { Addr } from "./Addr";

export function BuyPanel() {
  return (
    <WithDeployment>
      {({ contracts, account, chainId }) => <Buy contracts={contracts} account={account!} chainId={chainId} />}
    </WithDeployment>
  );
}

/** BandwidthCredit marks an unrevoked key with the largest epoch. */
const NOT_REVOKED = 2n ** 64n - 1n;
// The typed data the contracts verify, from the one definition the relayer uses too.
const KEY_TYPES = CLIENT_KEY_TYPES;

function Buy({ contracts, account, chainId }: { contracts: Contracts; account: Address; chainId: number }) {
  const [gbText, setGbText] = useState("1");
  const { state, run, busy } = useTx();
  const { signTypedDataAsync } = useSignTypedData();
  const { writeContractAsync } = useWriteContract();
  const token = { address: contracts.X0T, abi: x0tAbi, chainId } as const;
  const credit = { address: contracts.BandwidthCredit, abi: bandwidthCreditAbi, chainId } as const;
  const reads = useReadContracts({
    contracts: [
      { ...credit, functionName: "pricePerGB" },
      { ...token, functionName: "burnBps" },
      { ...token, functionName: "balanceOf", args: [account] },
      { ...credit, functionName: "creditOf", args: [account] },
      { ...token, functionName: "name" },
      { ...token, functionName: "nonces", args: [account] },
      { ...token, functionName: "isFeeExempt", args: [contracts.BandwidthCredit] },
    ],
  });
  const [price, burnBps, balance, creditOf, name, nonce, exempt] = (reads.data ?? []).map((r) => r.result) as [
    bigint?,
    number?,
    bigint?,
    (readonly [bigint, bigint] | undefined)?,
    string?,
    bigint?,
    boolean?,
  ];
  const gbUnits = parseAmount(gbText, 9); // bytes
  const cost = gbUnits !== undefined && price !== undefined ? (gbUnits * price) / GB : undefined;
  const fee = useReadContract({
    ...token,
    functionName: "transferFee",
    args: [account, contracts.BandwidthCredit, cost ?? 0n],
    query: { enabled: cost !== undefined },
  }).data;

  async function buy() {
    if (cost === undefined || name === undefined || nonce === undefined) return;
    await run(`Buy ${gbText} GB`, async (step) => {
      step("Sign the permit");
      const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600);
      const signature = await signTypedDataAsync({
        domain: { name, version: "1", chainId, verifyingContract: contracts.X0T },
        types: PERMIT_TYPES,
        primaryType: "Permit",
        message: { owner: account, spender: contracts.BandwidthCredit, value: cost, nonce, deadline },
      });
      const { v, r, s } = parseSignature(signature);
      step(`Buy ${gbText} GB`);
      return writeContractAsync({
        ...credit,
        functionName: "buyWithPermit",
        args: [cost, deadline, Number(v ?? 27n), r, s],
      });
    });
  }

  return (
    <>
      <section className="card" aria-labelledby="buy-h">
        <h2 id="buy-h">Credit</h2>
        <dl className="facts">
          <dt>Your X0T</dt>
          <dd data-testid="balance">{fmtX0T(balance)}</dd>
          <dt>Credit left</dt>
          <dd data-testid="credit-left">{fmtGB(creditOf?.[0])}</dd>
          <dt>Price</dt>
          <dd data-testid="price">{price === undefined ? "…" : `${fmtX0T(price)} per GB`}</dd>
          <dt>Transfer burn</dt>
          <dd data-testid="burn">
            {burnBps === undefined ? "…" : `${burnBps / 100}% of every X0T transfer is burned`}
            {exempt ? "; BandwidthCredit is exempt, so a purchase pays no burn" : ""}
          </dd>
        </dl>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void buy();
          }}
        >
          <label className="field">
            Gigabytes
            <input
              name="gb"
              inputMode="decimal"
              value={gbText}
              onChange={(e) => setGbText(e.target.value)}
              aria-describedby="buy-cost"
            />
          </label>
          <button type="submit" disabled={busy || cost === undefined}>
            Sign permit and buy
          </button>
        </form>
        <p className="hint" id="buy-cost" data-testid="cost">
          {cost === undefined
            ? "Enter a positive number of GB."
            : `Costs ${fmtX0T(cost)}; burned on the way: ${fmtX0T(fee ?? 0n)}. One signature (permit) and one transaction.`}
        </p>
        <TxStatus state={state} />
      </section>
      <ClientKeys contracts={contracts} account={account} chainId={chainId} />
      <LockCredit contracts={contracts} chainId={chainId} />
    </>
  );
}

function ClientKeys({ contracts, account, chainId }: { contracts: Contracts; account: Address; chainId: number }) {
  const [generated, setGenerated] = useState<{ key: Hex; address: Address }>();
  const [pasted, setPasted] = useState("");
  const [proof, setProof] = useState("");
  const [capText, setCapText] = useState("1");
  const [revokeText, setRevokeText] = useState("");
  const { state, run, busy } = useTx();
  const { writeContractAsync } = useWriteContract();
  const credit = { address: contracts.BandwidthCredit, abi: bandwidthCreditAbi, chainId } as const;
  const cap = parseAmount(capText, 9);
  const keyAddress = generated?.address ?? (isAddress(pasted) ? pasted : undefined);
  const info = useReadContract({
    ...credit,
    functionName: "clientKeys",
    args: [keyAddress ?? "0x0000000000000000000000000000000000000000"],
    query: { enabled: keyAddress !== undefined },
  }).data;

  function generate() {
    const key = generatePrivateKey();
    setGenerated({ key, address: privateKeyToAccount(key).address });
    setPasted("");
  }
  function download() {
    if (!generated) return;
    const blob = new Blob([JSON.stringify({ address: generated.address, privateKey: generated.key }, null, 2)], {
      type: "application/json",
    });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `x0t-client-key-${generated.address.slice(2, 10)}.json`;
    a.click();
    URL.revokeObjectURL(a.href);
  }
  async function authorise() {
    if (!keyAddress || cap === undefined) return;
    await run("Authorise client key", async () => {
      let signature: Hex;
      if (generated) {
        // The key proves it agrees to sign for this account: ClientKeyAuthorization(account, key, cap).
        signature = await privateKeyToAccount(generated.key).signTypedData({
          domain: {
            name: "x0tta6bl4 BandwidthCredit",
            version: "1",
            chainId,
            verifyingContract: contracts.BandwidthCredit,
          },
          types: KEY_TYPES,
          primaryType: "ClientKeyAuthorization",
          message: { account, key: generated.address, capPerEpoch: cap },
        });
      } else if (isHex(proof)) signature = proof;
      else throw new Error("Paste the key's signature over ClientKeyAuthorization(account, key, capPerEpoch).");
      return writeContractAsync({ ...credit, functionName: "authorizeClientKey", args: [keyAddress, cap, signature] });
    });
  }

  return (
    <section className="card" aria-labelledby="keys-h">
      <h2 id="keys-h">Client keys</h2>
      <p className="hint">
        A client key signs lock requests and receipts for your account, up to a cap of bytes per epoch. Generate it here
        (it never leaves this browser unless you download it) or paste an address with its proof.
      </p>
      <div className="row">
        <button type="button" className="secondary" onClick={generate}>
          Generate a key in the browser
        </button>
        {generated && (
          <button type="button" className="secondary" onClick={download}>
            Download the key
          </button>
        )}
      </div>
      {generated && (
        <p data-testid="generated-key">
          New key: <Addr address={generated.address} full />
        </p>
      )}
      {!generated && (
        <div className="row">
          <label className="field">
            Key address
            <input value={pasted} onChange={(e) => setPasted(e.target.value)} placeholder="0x…" />
          </label>
          <label className="field">
            Key&apos;s proof (signature)
            <input value={proof} onChange={(e) => setProof(e.target.value)} placeholder="0x…" />
          </label>
        </div>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void authorise();
        }}
      >
        <label className="field">
          Cap per epoch (GB)
          <input value={capText} onChange={(e) => setCapText(e.target.value)} inputMode="decimal" />
        </label>
        <button type="submit" disabled={busy || !keyAddress || cap === undefined}>
          Authorise key
        </button>
      </form>
      {keyAddress && info && (
        <p data-testid="key-status">
          {info[0] === "0x0000000000000000000000000000000000000000" ? (
            "This key is not authorised yet."
          ) : (
            <>
              Authorised for <Addr address={info[0]} />, cap {fmtGB(info[2])} per epoch
              {info[1] !== NOT_REVOKED ? `, revoked (receipts up to epoch ${info[1]})` : ""}.
            </>
          )}
        </p>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (isAddress(revokeText))
            void run("Revoke client key", () =>
              writeContractAsync({ ...credit, functionName: "revokeClientKey", args: [revokeText] }),
            );
        }}
      >
        <label className="field">
          Key to revoke
          <input value={revokeText} onChange={(e) => setRevokeText(e.target.value)} placeholder="0x…" />
        </label>
        <button type="submit" disabled={busy || !isAddress(revokeText)}>
          Revoke key
        </button>
      </form>
      <TxStatus state={state} />
    </section>
  );
}

function LockCredit({ contracts, chainId }: { contracts: Contracts; chainId: number }) {
  const [relayer, setRelayer] = useState("");
  const [gbText, setGbText] = useState("0.5");
  const [epochsText, setEpochsText] = useState("24");
  const { state, run, busy } = useTx();
  const { writeContractAsync } = useWriteContract();
  const current = useReadContract({
    address: contracts.EpochRewards,
    abi: epochRewardsAbi,
    chainId,
    functionName: "currentEpoch",
  }).data;
  const bytes = parseAmount(gbText, 9);
  const epochs = /^\d+$/.test(epochsText) ? BigInt(epochsText) : undefined;
  const ok = isAddress(relayer) && bytes !== undefined && epochs !== undefined && current !== undefined;
  return (
    <section className="card" aria-labelledby="lock-h">
      <h2 id="lock-h">Lock credit for a relay</h2>
      <p className="hint">
        Locked bytes can only pay that relay, through receipts, until the expiry epoch (current epoch:{" "}
        {current?.toString() ?? "…"}) plus its submission window.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (ok)
            void run("Lock credit", () =>
              writeContractAsync({
                address: contracts.BandwidthCredit,
                abi: bandwidthCreditAbi,
                chainId,
                functionName: "lock",
                args: [relayer as Address, bytes!, current! + epochs!],
              }),
            );
        }}
      >
        <label className="field">
          Relay (operator address)
          <input value={relayer} onChange={(e) => setRelayer(e.target.value)} placeholder="0x…" />
        </label>
        <label className="field">
          GB
          <input value={gbText} onChange={(e) => setGbText(e.target.value)} inputMode="decimal" />
        </label>
        <label className="field">
          Epochs
          <input value={epochsText} onChange={(e) => setEpochsText(e.target.value)} inputMode="numeric" />
        </label>
        <button type="submit" disabled={busy || !ok}>
          Lock
        </button>
      </form>
      <TxStatus state={state} />
    </section>
  );
}

import Link from "next/link";

export default function Home() {
  return (
    <>
      <h1>x0tta6bl4: a post-quantum relay network, paid for and governed on-chain</h1>
      <section className="card">
        <p>
          Buy bandwidth credit with X0T, lock it for the relays you use, and pay them with cumulative receipts your
          client keys sign. Operators stake X0T, register their node and earn rewards each epoch.
        </p>
        <ul>
          <li>
            <Link href="/buy">Buy bandwidth</Link>: credit, client keys, locks
          </li>
          <li>
            <Link href="/relayer">Run a relayer</Link>: stake, register, unbond, withdraw, claim
          </li>
          <li>
            <Link href="/network">Network</Link>: relayers, supply, burn, epoch
          </li>
        </ul>
      </section>
    </>
  );
}

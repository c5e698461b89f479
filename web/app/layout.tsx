import type { Metadata, Viewport } from "next";
import Link from "next/link";
import type { ReactNode } from "react";
import { Providers } from "@/components/Providers";
import { Connect } from "@/components/Connect";
import { loadDeployments } from "@/lib/deployments";
import "./globals.css";

// Addresses are read from the deployment files on each request (a restarted local chain needs no rebuild).
export const dynamic = "force-dynamic";

export const metadata: Metadata = {
  title: "x0tta6bl4",
  description: "Post-quantum relay network: buy bandwidth, run a relayer, see the network",
};
export const viewport: Viewport = { width: "device-width", initialScale: 1 };

export default function RootLayout({ children }: { children: ReactNode }) {
  const deployments = loadDeployments();
  return (
    <html lang="en">
      <body>
        <Providers deployments={deployments}>
          <header>
            <Link href="/" className="brand">
              x0tta6bl4
            </Link>
            <nav aria-label="Main">
              <Link href="/buy">Buy bandwidth</Link>
              <Link href="/relayer">Run a relayer</Link>
              <Link href="/network">Network</Link>
              <Link href="/governance">Governance</Link>
              <Link href="/treasury">Treasury</Link>
            </nav>
            <Connect />
          </header>
          <main>{children}</main>
        </Providers>
      </body>
    </html>
  );
}

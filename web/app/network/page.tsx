import { NetworkPanel } from "@/components/NetworkPanel";

export const metadata = { title: "Network · x0tta6bl4" };

export default function NetworkPage() {
  return (
    <>
      <h1>Network</h1>
      <NetworkPanel />
    </>
  );
}

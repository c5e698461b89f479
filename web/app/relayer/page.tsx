import { RelayerPanel } from "@/components/RelayerPanel";

export const metadata = { title: "Run a relayer · x0tta6bl4" };

export default function RelayerPage() {
  return (
    <>
      <h1>Run a relayer</h1>
      <RelayerPanel />
    </>
  );
}

import { TreasuryPanel } from "@/components/TreasuryPanel";

export const metadata = { title: "Treasury · x0tta6bl4" };

export default function TreasuryPage() {
  return (
    <>
      <h1>Treasury</h1>
      <TreasuryPanel />
    </>
  );
}

import { GovernancePanel } from "@/components/GovernancePanel";

export const metadata = { title: "Governance · x0tta6bl4" };

export default function GovernancePage() {
  return (
    <>
      <h1>Governance</h1>
      <GovernancePanel />
    </>
  );
}

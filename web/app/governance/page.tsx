import { GovernancePanel } from "@/components/GovernancePanel";
import { SnapshotPanel } from "@/components/SnapshotPanel";

export const metadata = { title: "Governance · x0tta6bl4" };

export default function GovernancePage() {
  // Read where the app runs (not inlined at build): which Snapshot hub and space, if any.
  const hub = process.env.X0T_SNAPSHOT_HUB;
  const space = process.env.X0T_SNAPSHOT_SPACE;
  return (
    <>
      <h1>Governance</h1>
      <GovernancePanel />
      <SnapshotPanel hub={hub} space={space} />
    </>
  );
}

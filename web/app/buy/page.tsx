import { BuyPanel } from "@/components/BuyPanel";

export const metadata = { title: "Buy bandwidth · x0tta6bl4" };

export default function BuyPage() {
  return (
    <>
      <h1>Buy bandwidth</h1>
      <BuyPanel />
    </>
  );
}

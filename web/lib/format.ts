import { formatUnits, parseUnits } from "viem";

export const GB = 1_000_000_000n;
export const fmtX0T = (v: bigint | undefined, digits = 4) =>
  v === undefined
    ? "…"
    : `${Number(formatUnits(v, 18)).toLocaleString("en-US", { maximumFractionDigits: digits })} X0T`;
export const fmtGB = (bytes: bigint | undefined) =>
  bytes === undefined ? "…" : `${Number(formatUnits(bytes, 9)).toFixed(3)} GB`;
/** Parses a decimal amount; undefined if it is not a positive number. */
export function parseAmount(text: string, decimals: number): bigint | undefined {
  try {
    const v = parseUnits(text.trim(), decimals);
    return v > 0n ? v : undefined;
  } catch {
    return undefined;
  }
}

/** EIP-2612 permits for X0T: one signature instead of an approve transaction. */
import type { Account, Address, Chain, Transport, WalletClient } from "viem";
import { parseSignature } from "viem";

export const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

/** Signs a permit of `value` for `spender` on the token named `name` at `token`; returns v, r, s. */
export async function signPermit(
  wallet: WalletClient<Transport, Chain | undefined, Account>,
  args: {
    token: Address;
    name: string;
    chainId: number;
    spender: Address;
    value: bigint;
    nonce: bigint;
    deadline: bigint;
  },
) {
  const signature = await wallet.signTypedData({
    account: wallet.account,
    domain: { name: args.name, version: "1", chainId: args.chainId, verifyingContract: args.token },
    types: PERMIT_TYPES,
    primaryType: "Permit",
    message: {
      owner: wallet.account.address,
      spender: args.spender,
      value: args.value,
      nonce: args.nonce,
      deadline: args.deadline,
    },
  });
  const { v, r, s } = parseSignature(signature);
  return { v: Number(v ?? 27n), r, s };
}

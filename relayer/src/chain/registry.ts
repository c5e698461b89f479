/**
 * Typed data of the RelayerRegistry: the consent a node's signer gives to sign for an operator.
 *
 * The registry refuses a signer address that has not signed SignerConsent(operator, signer), so
 * nobody can squat the signing address another operator is about to register. The field names
 * and types must match RelayerRegistry.SIGNER_CONSENT_TYPEHASH (test/contracts checks them).
 */
import type { Address, Hex, LocalAccount } from "viem";

export const SIGNER_CONSENT_TYPES = {
  SignerConsent: [
    { name: "operator", type: "address" },
    { name: "signer", type: "address" },
  ],
} as const;

/** EIP-712 domain of the RelayerRegistry at `verifyingContract` on `chainId`. */
export function relayerRegistryDomain(chainId: number, verifyingContract: Address) {
  return { name: "x0tta6bl4 RelayerRegistry", version: "1", chainId, verifyingContract } as const;
}

/** The node's `signer` agrees to sign for `operator` (the `signerConsent` argument of register/updateNode). */
export function signSignerConsent(
  signer: LocalAccount,
  domain: ReturnType<typeof relayerRegistryDomain>,
  operator: Address,
): Promise<Hex> {
  return signer.signTypedData({
    domain,
    types: SIGNER_CONSENT_TYPES,
    primaryType: "SignerConsent",
    message: { operator, signer: signer.address },
  });
}

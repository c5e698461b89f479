/** A failed transaction in words: the contracts' custom errors decoded and explained. */
import {
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  formatUnits,
  type Hex,
  UserRejectedRequestError,
} from "viem";
import { allErrorsAbi } from "./abi";

const x0t = (v: unknown) => `${formatUnits(v as bigint, 18)} X0T`;
const gb = (v: unknown) => `${formatUnits(v as bigint, 9)} GB`;

const WORDS: Record<string, (a: readonly unknown[]) => string> = {
  ZeroAmount: () => "The amount must be more than zero.",
  ZeroAddress: () => "An address is missing (zero address).",
  PurchaseTooSmall: (a) => `${x0t(a[0])} buys less than one byte at ${x0t(a[1])} per GB.`,
  KeyAlreadyAuthorized: (a) => `Client key ${a[0]} is already bound to account ${a[1]}.`,
  InvalidKeyProof: (a) => `The key's proof is not signed by ${a[0]} (signed by ${a[1]}).`,
  UnknownClientKey: (a) => `Client key ${a[0]} was never authorised.`,
  NotKeyAccount: (a) => `Client key ${a[0]} belongs to ${a[1]}, not to you.`,
  KeyAlreadyRevoked: (a) => `Client key ${a[0]} is already revoked.`,
  KeyRevoked: (a) => `Client key ${a[0]} is revoked.`,
  KeyCapExceeded: (a) => `The key's per-epoch cap would be exceeded (${gb(a[1])} + ${gb(a[2])} > ${gb(a[3])}).`,
  InvalidExpiry: (a) => `Expiry epoch ${a[0]} is not between the current epoch ${a[1]} and ${a[2]}.`,
  InsufficientCredit: (a) => `Not enough free credit: ${gb(a[1])} left, ${gb(a[2])} needed.`,
  LockNotReleasable: (a) => `The lock can be released only after epoch ${a[3]} (now ${a[2]}).`,
  NothingLocked: () => "Nothing is locked for that relay.",
  LockExpired: () => "The lock has expired.",
  AlreadyRegistered: (a) => `${a[0]} is already registered as a relayer.`,
  NotRegistered: (a) => `${a[0]} is not a registered relayer: register first.`,
  StakeBelowMinimum: (a) => `Stake ${x0t(a[0])} is below the minimum of ${x0t(a[1])}.`,
  SignerInUse: (a) => `Signer ${a[0]} already signs for operator ${a[1]}.`,
  KeysHashInUse: (a) => `These node keys are already used by ${a[1]}.`,
  EndpointInUse: (a) => `Endpoint ${a[0]} is already used by ${a[1]}.`,
  InvalidSignerConsent: (a) => `The signer's consent is not signed by ${a[0]} (signed by ${a[1]}).`,
  WithdrawalsFrozenBy: (a) => `Withdrawals are frozen by slash proposal ${a[1]}.`,
  InvalidEndpoint: (a) => `The endpoint must be 1..${a[1]} bytes (got ${a[0]}).`,
  InvalidRegion: () => "The region must be a two-letter upper-case country code.",
  ZeroKeysHash: () => "The node keys hash is missing.",
  UnbondExceedsStake: (a) => `Cannot unbond ${x0t(a[0])}: the stake is ${x0t(a[1])}.`,
  NothingToWithdraw: () => "Nothing is unbonded: unbond first.",
  StillUnbonding: (a) =>
    `Still unbonding: withdrawable from ${new Date(Number(a[0]) * 1000).toISOString().replace(".000Z", "Z")}.`,
  ERC20InsufficientBalance: (a) => `Not enough X0T: balance ${x0t(a[1])}, needed ${x0t(a[2])}.`,
  ERC20InsufficientAllowance: (a) => `Allowance too low: ${x0t(a[1])} approved, ${x0t(a[2])} needed.`,
  ERC2612ExpiredSignature: () => "The permit signature has expired.",
  ERC2612InvalidSigner: () => "The permit was signed by another account.",
};

export function describeError(error: unknown): string {
  if (error instanceof BaseError) {
    if (error.walk((e) => e instanceof UserRejectedRequestError)) return "You rejected the request in your wallet.";
    const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (reverted instanceof ContractFunctionRevertedError) {
      let name = reverted.data?.errorName;
      let args = (reverted.data?.args ?? []) as readonly unknown[];
      if (!name && reverted.raw) {
        try {
          const decoded = decodeErrorResult({ abi: allErrorsAbi, data: reverted.raw as Hex });
          name = decoded.errorName;
          args = (decoded.args ?? []) as readonly unknown[];
        } catch {
          /* unknown selector */
        }
      }
      if (name) return `${WORDS[name]?.(args) ?? "The contract refused the call."} (${name})`;
      if (reverted.reason) return `Reverted: ${reverted.reason}`;
    }
    return error.shortMessage;
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * Snapshot proposals and votes signed by a viem account (used by the CLI and the web app).
 *
 * snapshot.js's Client712 signs the hub's EIP-712 messages (domain "snapshot" / "0.1.4") through an
 * ethers-style signer; `snapshotSigner` is the one small adapter from a viem account to it. The hub
 * URL is configurable; the default is the testnet hub, where Base Sepolia spaces live (Client712
 * posts to its sequencer).
 */
import snapshotModule from "@snapshot-labs/snapshot.js";
import type { LocalAccount, TypedDataDomain } from "viem";

// snapshot.js is CommonJS whose typings declare an ES default export: under Node's interop the
// default import is already that object at run time, while TypeScript sees it one level down.
type SnapshotJs = typeof snapshotModule.default;
export const snapshotJs: SnapshotJs =
  "Client712" in snapshotModule ? (snapshotModule as unknown as SnapshotJs) : snapshotModule.default;

export const TESTNET_HUB = "https://testnet.hub.snapshot.org";
export const SNAPSHOT_DOMAIN = { name: "snapshot", version: "0.1.4" } as const;

type TypedFields = Record<string, Array<{ name: string; type: string }>>;

/** The ethers v5 `_signTypedData` / `getAddress` surface that snapshot.js calls, backed by viem. */
export function snapshotSigner(account: LocalAccount) {
  return {
    getAddress: async () => account.address,
    _signTypedData: (domain: TypedDataDomain, types: TypedFields, message: Record<string, unknown>) => {
      const primaryType = Object.keys(types)[0];
      if (!primaryType) throw new Error("snapshot: typed data without a type");
      return account.signTypedData({ domain, types, primaryType, message });
    },
  };
}

export interface SnapshotReceipt {
  id: string;
  ipfs?: string;
  relayer?: { address: string; receipt: string };
}

export class SnapshotError extends Error {
  override name = "SnapshotError";
}

export interface ProposalInput {
  space: string;
  title: string;
  body: string;
  choices: string[];
  /** Unix seconds. Computed from the space's rules when omitted (timestamp + delay). */
  start?: number;
  /** Unix seconds. Computed from the space's rules when omitted (start + period). */
  end?: number;
  /** Block number of the voting-power snapshot. */
  snapshot: number;
  type?: "single-choice" | "basic";
  discussion?: string;
  /** The signed message's timestamp (Unix seconds); now when omitted. */
  timestamp?: number;
}

/** The space's voting rules that the hub enforces on every proposal (space.json's `voting`). */
export interface SpaceRules {
  /** Seconds: the hub requires start = the signed timestamp + delay. */
  delay?: number;
  /** Seconds: the hub requires end - start = period. */
  period?: number;
  /** The hub requires the proposal's type to be this one. */
  type?: string;
}

/**
 * The timing of a proposal as the hub will check it (snapshot-sequencer's proposal writer):
 * start = timestamp + delay, end = start + period, the space's type, and an end in the future.
 * Fills in start/end when they are omitted; throws a SnapshotError naming the broken rule (with
 * the hub's own wording) instead of sending a proposal the hub would refuse.
 */
export function proposalTiming(p: ProposalInput, rules: SpaceRules = {}, now = Math.floor(Date.now() / 1000)) {
  const timestamp = p.timestamp ?? now;
  const start = p.start ?? timestamp + (rules.delay ?? 0);
  const end = p.end ?? (rules.period ? start + rules.period : undefined);
  if (end === undefined)
    throw new SnapshotError("snapshot proposal: `end` is required when the space has no voting period");
  const type = p.type ?? "single-choice";
  if (rules.delay && start !== timestamp + rules.delay)
    throw new SnapshotError(
      `snapshot proposal refused: invalid voting delay (start ${start} must be timestamp ${timestamp} + ${rules.delay})`,
    );
  if (rules.period && end - start !== rules.period)
    throw new SnapshotError(
      `snapshot proposal refused: invalid voting period (end - start = ${end - start}, the space requires ${rules.period})`,
    );
  if (rules.type && type !== rules.type)
    throw new SnapshotError(
      `snapshot proposal refused: invalid voting type (${type}, the space requires ${rules.type})`,
    );
  if (end <= now) throw new SnapshotError("snapshot proposal refused: proposal end date must be in the future");
  return { timestamp, start, end, type };
}

export function createSnapshotClient(options: { account: LocalAccount; hubUrl?: string; rules?: SpaceRules }) {
  const client = new snapshotJs.Client712(options.hubUrl ?? TESTNET_HUB);
  // Client712's declared types want an ethers Wallet; it only calls the two methods above.
  const signer = snapshotSigner(options.account) as unknown as Parameters<typeof client.vote>[0];
  const wrap = async (action: Promise<unknown>, what: string): Promise<SnapshotReceipt> => {
    try {
      return (await action) as SnapshotReceipt;
    } catch (cause) {
      const detail =
        typeof cause === "object" && cause && "error_description" in cause
          ? String((cause as { error_description: unknown }).error_description)
          : String(cause);
      throw new SnapshotError(`snapshot ${what} refused: ${detail}`, { cause });
    }
  };
  return {
    propose: async (p: ProposalInput) => {
      const timing = proposalTiming(p, options.rules);
      return wrap(
        client.proposal(signer, options.account.address, {
          // Client712 signs this timestamp instead of its own clock, so start = timestamp + delay holds.
          timestamp: timing.timestamp,
          space: p.space,
          type: timing.type,
          title: p.title,
          body: p.body,
          choices: p.choices,
          start: timing.start,
          end: timing.end,
          snapshot: p.snapshot,
          discussion: p.discussion ?? "",
          plugins: "{}",
          labels: [],
          app: "x0tta6bl4",
        } as Parameters<typeof client.proposal>[2]),
        "proposal",
      );
    },
    vote: (v: { space: string; proposal: string; choice: number; reason?: string }) =>
      wrap(
        client.vote(signer, options.account.address, {
          space: v.space,
          proposal: v.proposal,
          type: "single-choice",
          choice: v.choice,
          reason: v.reason ?? "",
          app: "x0tta6bl4",
        }),
        "vote",
      ),
  };
}

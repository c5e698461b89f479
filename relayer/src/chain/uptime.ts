/**
 * Claiming the uptime bonus: once an epoch has ended and at least k other relayers' attestations of
 * this relay's uptime in it are held (node/uptime.ts keeps them in the AccountingStore), send them
 * with EpochRewards.submitUptime. The chain is the record of what is done: a relay that already has
 * the bonus for an epoch (`relayerEpoch(..).uptimeBonus`) never sends again, so a crash anywhere
 * costs at most one transaction that reverts with UptimeAlreadyAttested.
 *
 * An attestation the contract refuses (signer registered during or after the epoch, not staked
 * then, a bad signature) is dropped with its reason and the rest are tried again; fewer than k
 * usable ones wait for more until the submission window closes.
 */
import { type Address, BaseError, ContractFunctionRevertedError, type Hex } from "viem";
import type { AccountingStore } from "../accounting/store.ts";
import { epochRewardsAbi } from "./abi.ts";
import type { SettlementClients } from "./settlement.ts";
import { receiptsClosed, revertName } from "./settlement.ts";
import { resumeWithBumps, sendWithBumps } from "./send.ts";

export type UptimeOutcome =
  | { epoch: bigint; kind: "attested"; attesters: number; tx: Hex }
  | { epoch: bigint; kind: "already-attested" }
  | { epoch: bigint; kind: "waiting"; usable: number; needed: number }
  | { epoch: bigint; kind: "abandoned"; reason: string }
  | { epoch: bigint; kind: "failed"; reason: string };

/** Errors that blame one attestation (its signer is the error's first argument). */
const BLAMES_ATTESTATION = new Set(["InvalidAttester", "InvalidAttestationSignature", "UptimeBelowMinimum"]);

function revertOf(error: unknown): { name: string; args: readonly unknown[] } | undefined {
  if (!(error instanceof BaseError)) return undefined;
  const revert = error.walk((e) => e instanceof ContractFunctionRevertedError);
  if (!(revert instanceof ContractFunctionRevertedError) || !revert.data) return undefined;
  return { name: revert.data.errorName, args: revert.data.args ?? [] };
}

async function hasBonus(clients: SettlementClients, relayer: Address, epoch: bigint): Promise<boolean> {
  const account = await clients.public.readContract({
    address: clients.rewards,
    abi: epochRewardsAbi,
    functionName: "relayerEpoch",
    args: [epoch, relayer],
  });
  return account.uptimeBonus;
}

/**
 * One round: for every ended epoch with attestations held and no bonus yet, submit them (or say
 * why not). Safe to run at any time and as often as wanted.
 */
export async function submitUptimeDue(
  store: AccountingStore,
  clients: SettlementClients,
  relayer: Address,
  currentEpoch: bigint,
): Promise<UptimeOutcome[]> {
  const outcomes: UptimeOutcome[] = [];
  // A bonus recorded in the last epochs may have been taken out by a reorg: look again while the
  // epoch's window may still be open, and claim again if it is gone.
  for (const epoch of store.attestedEpochsSince(currentEpoch > 3n ? currentEpoch - 3n : 0n)) {
    if (!(await hasBonus(clients, relayer, epoch))) store.setUptimeClaim(epoch, "failed", "no longer on-chain (reorg)");
  }
  for (const epoch of store.pendingUptimeEpochs()) {
    if (epoch >= currentEpoch) continue;
    outcomes.push(await submitEpochUptime(store, clients, relayer, epoch));
  }
  return outcomes;
}

async function submitEpochUptime(
  store: AccountingStore,
  clients: SettlementClients,
  relayer: Address,
  epoch: bigint,
): Promise<UptimeOutcome> {
  // A transaction a crash or a timeout left: its outcome first (bumped while it waits).
  const held = store.uptimeClaim(epoch);
  if (held?.status === "sent" && held.txHashes.length > 0) {
    const receipt = await resumeWithBumps(
      clients,
      held.txHashes,
      (hash) => store.addUptimeTx(epoch, hash),
      clients.bumps,
      clients.logger,
    );
    if (receipt?.status === "success") {
      store.setUptimeClaim(epoch, "attested", receipt.transactionHash);
      return { epoch, kind: "attested", attesters: store.attestations(epoch).length, tx: receipt.transactionHash };
    }
  }
  if (await hasBonus(clients, relayer, epoch)) {
    store.setUptimeClaim(epoch, "attested", "found on-chain");
    return { epoch, kind: "already-attested" };
  }
  if (await receiptsClosed(clients, epoch)) {
    store.setUptimeClaim(epoch, "abandoned", "submission window closed");
    return { epoch, kind: "abandoned", reason: "submission window closed" };
  }
  const [era] = await clients.public.readContract({
    address: clients.rewards,
    abi: epochRewardsAbi,
    functionName: "epochInfo",
    args: [epoch],
  });
  const needed = era.params.minAttestations;
  // Each refused attestation is dropped and the rest tried again: at most one round per attestation.
  for (let round = 0; round <= 64; round++) {
    const held = store.attestations(epoch);
    if (held.length < needed) return { epoch, kind: "waiting", usable: held.length, needed };
    // Exactly k (still ascending by signer): every extra attester is one more that could make the
    // transaction revert between the simulation and the block (e.g. by rotating its signer).
    const attestations = held.slice(0, needed);
    const args = [relayer, epoch, attestations] as const;
    try {
      await clients.public.simulateContract({
        address: clients.rewards,
        abi: epochRewardsAbi,
        functionName: "submitUptime",
        args,
        account: clients.wallet.account,
      });
    } catch (error) {
      const revert = revertOf(error);
      if (revert?.name === "UptimeAlreadyAttested") {
        store.setUptimeClaim(epoch, "attested", "found on-chain");
        return { epoch, kind: "already-attested" };
      }
      if (revert && BLAMES_ATTESTATION.has(revert.name) && typeof revert.args[0] === "string") {
        store.dropAttestation(epoch, revert.args[0] as Address, revert.name);
        continue;
      }
      if (revert?.name === "NotEnoughAttestations")
        return { epoch, kind: "waiting", usable: attestations.length, needed };
      // The relayer's side (not active, window): nothing to send; the next round asks again.
      store.setUptimeClaim(epoch, "failed", revertName(error));
      return { epoch, kind: "failed", reason: revertName(error) };
    }
    store.clearUptimeTxs(epoch);
    store.setUptimeClaim(epoch, "sending");
    const receipt = await sendWithBumps(
      clients,
      { address: clients.rewards, abi: epochRewardsAbi, functionName: "submitUptime", args },
      (hash) => store.addUptimeTx(epoch, hash),
      clients.bumps,
      clients.logger,
    );
    if (receipt.status !== "success") {
      store.setUptimeClaim(epoch, "failed", `transaction ${receipt.transactionHash} reverted`);
      return { epoch, kind: "failed", reason: `transaction ${receipt.transactionHash} reverted` };
    }
    store.setUptimeClaim(epoch, "attested", receipt.transactionHash);
    return { epoch, kind: "attested", attesters: attestations.length, tx: receipt.transactionHash };
  }
  return { epoch, kind: "failed", reason: "too many refused attestations" };
}

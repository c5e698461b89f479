/**
 * On a public chain the Treasury module uses Safe's canonical singleton, factory and fallback
 * handler instead of deploying them (scripts/deploy.ts reads them from @safe-global/safe-deployments).
 * Here they are deployed first from the same artifacts, then the module is pointed at them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Abi, Address, Hex } from "viem";
import SafeL2 from "@safe-global/safe-smart-account/build/artifacts/contracts/SafeL2.sol/SafeL2.json" with { type: "json" };
import SafeProxyFactory from "@safe-global/safe-smart-account/build/artifacts/contracts/proxies/SafeProxyFactory.sol/SafeProxyFactory.json" with { type: "json" };
import FallbackHandler from "@safe-global/safe-smart-account/build/artifacts/contracts/handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json" with { type: "json" };
import { treasuryModule } from "../../deploy/ignition/modules/Treasury.js";
import { connect } from "../helpers/protocol.ts";

describe("Treasury module on canonical Safe deployments", () => {
  it("creates the Safe through the existing factory, with the executor module and the guard", async () => {
    const connection = await connect();
    const { viem } = connection;
    const [deployer, a, b, c] = await viem.getWalletClients();
    const publicClient = await viem.getPublicClient();
    const deploy = async (artifact: { abi: unknown; bytecode: string }): Promise<Address> => {
      const hash = await deployer!.deployContract({
        abi: artifact.abi as Abi,
        bytecode: artifact.bytecode as Hex,
        account: deployer!.account,
        chain: deployer!.chain,
      });
      return (await publicClient.waitForTransactionReceipt({ hash })).contractAddress!;
    };
    const canonical = {
      singleton: await deploy(SafeL2),
      factory: await deploy(SafeProxyFactory),
      handler: await deploy(FallbackHandler),
    };
    const deployed = (await connection.ignition.deploy(treasuryModule(canonical), {
      parameters: {
        Treasury: { council: [a!.account.address, b!.account.address, c!.account.address], threshold: 2, minDelay: 60 },
      },
    })) as unknown as Record<"safe" | "timelock" | "guard" | "executor" | "singleton", { address: Address }>;
    assert.equal(deployed.singleton.address.toLowerCase(), canonical.singleton.toLowerCase());
    const read = (functionName: string, args: unknown[] = []) =>
      publicClient.readContract({ address: deployed.safe.address, abi: SafeL2.abi as Abi, functionName, args });
    assert.equal(await read("isModuleEnabled", [deployed.executor.address]), true);
    assert.equal(
      await read("isModuleEnabled", [deployed.timelock.address]),
      false,
      "the timelock goes through the executor",
    );
    assert.equal(await read("getThreshold"), 2n);
    // Safe 1.5 keeps the guard in a fixed storage slot: keccak256("guard_manager.guard.address").
    const slot = "0x4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8";
    const stored = await publicClient.getStorageAt({ address: deployed.safe.address, slot });
    assert.equal(`0x${stored!.slice(-40)}`.toLowerCase(), deployed.guard.address.toLowerCase());
  });
});

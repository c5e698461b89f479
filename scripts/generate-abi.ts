/**
 * Writes relayer/src/chain/abi.ts: the ABIs of the protocol contracts, typed `as const`, from the
 * Hardhat build. The relayer (and the web app) import them from there, so nobody pastes an ABI;
 * test/contracts/abi.test.ts fails when the committed file no longer matches the contracts.
 * `npm run abi` (builds first).
 */
import { writeFile } from "node:fs/promises";
import { artifacts } from "hardhat";
import { renderAbiModule } from "../test/helpers/abi.js";

const target = new URL("../relayer/src/chain/abi.ts", import.meta.url);
await writeFile(target, await renderAbiModule(artifacts));
console.log(`wrote ${target.pathname}`);

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { artifacts } from "hardhat";
import { renderAbiModule } from "../helpers/abi.js";

describe("relayer/src/chain/abi.ts", () => {
  it("matches the contracts as built (run `npm run abi` after changing a contract's interface)", async () => {
    const committed = await readFile(new URL("../../relayer/src/chain/abi.ts", import.meta.url), "utf8");
    assert.equal(committed, await renderAbiModule(artifacts));
  });
});

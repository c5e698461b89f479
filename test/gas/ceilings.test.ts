import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatGasTable, measureGas } from "../helpers/gas.js";
import { connect } from "../helpers/protocol.js";

// Gas is deterministic on the in-process EVM, so ceilings are pass/fail (timings never are).
describe("gas ceilings", async () => {
  const connection = await connect();
  it("keeps every user-paid call under its ceiling", async () => {
    const rows = await measureGas(connection);
    const over = rows.filter((r) => r.gas > r.ceiling);
    assert.deepEqual(over, [], `over ceiling:\n${formatGasTable(over)}`);
    const marginal = rows.find((r) => r.call === "marginal gas per receipt");
    assert.ok(marginal && marginal.gas <= 30_000n, "marginal gas per receipt above the 30k goal");
  });
});

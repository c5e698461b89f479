#!/usr/bin/env node
// Fails unless every line of contracts/ was executed by `hardhat test --coverage`
// (reads coverage/lcov.info). Run after the coverage run; see "test:contracts" in package.json.
import { readFileSync } from "node:fs";

const lcov = readFileSync("coverage/lcov.info", "utf8");
const files = [];
let current;
for (const line of lcov.split("\n")) {
  if (line.startsWith("SF:")) current = { path: line.slice(3), missed: [] };
  else if (line.startsWith("DA:") && current && line.endsWith(",0")) current.missed.push(line.slice(3).split(",")[0]);
  else if (line === "end_of_record" && current) files.push(current);
}
const ours = files.filter((f) => f.path.startsWith("contracts/"));
if (ours.length === 0) {
  console.error("check-coverage: no contracts/ files in coverage/lcov.info");
  process.exit(1);
}
const missed = ours.filter((f) => f.missed.length > 0);
for (const f of missed) console.error(`check-coverage: ${f.path} lines never executed: ${f.missed.join(", ")}`);
console.log(`check-coverage: ${ours.length - missed.length}/${ours.length} contract files fully covered`);
process.exit(missed.length === 0 ? 0 : 1);

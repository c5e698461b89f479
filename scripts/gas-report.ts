/** Prints the gas table of the calls users pay for (see README "Gas"). `npm run gas` */
import { network } from "hardhat";
import { formatGasTable, measureGas } from "../test/helpers/gas.js";

const connection = await network.create();
console.log(formatGasTable(await measureGas(connection)));

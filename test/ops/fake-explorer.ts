/**
 * A local block explorer API on 127.0.0.1 that answers like Etherscan's v2 API and Blockscout's
 * Etherscan-compatible /api (`getsourcecode`, `verifysourcecode`, `checkverifystatus`), because
 * the real explorers are out of reach here. It records every request, and it does not wave
 * submissions through: like an explorer, it compiles the submitted standard-JSON input with the
 * solc build named by `compilerversion` (the npm `solc` package, offline) and accepts only if the
 * runtime bytecode equals the code on the chain (immutables masked) and the constructor arguments
 * are what the creation transaction carried.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { type Hex, createPublicClient, http } from "viem";

export interface Submission {
  explorer: "etherscan" | "blockscout";
  chainid?: string;
  apikey?: string;
  contractaddress: string;
  contractname: string;
  compilerversion: string;
  codeformat: string;
  constructorArguments: string;
  sourceCode: string;
  verdict?: string;
}

export interface RecordedRequest {
  explorer: "etherscan" | "blockscout";
  method: string;
  query: Record<string, string>;
}

interface SolcOutput {
  errors?: { severity: string; formattedMessage: string }[];
  contracts?: Record<
    string,
    Record<
      string,
      {
        evm: {
          bytecode: { object: string };
          deployedBytecode: {
            object: string;
            immutableReferences?: Record<string, { start: number; length: number }[]>;
          };
        };
      }
    >
  >;
}

type Solc = { version(): string; compile(input: string): string };

/** Zeroes the byte ranges solc reports as immutables (they are filled in at deployment). */
function maskImmutables(code: string, refs: Record<string, { start: number; length: number }[]> = {}): string {
  let masked = code;
  for (const ranges of Object.values(refs))
    for (const { start, length } of ranges)
      masked = masked.slice(0, start * 2) + "0".repeat(length * 2) + masked.slice((start + length) * 2);
  return masked;
}

export class FakeExplorer {
  readonly requests: RecordedRequest[] = [];
  readonly submissions: Submission[] = [];
  /** explorer + address → the submission that verified it. */
  private readonly verified = new Map<string, Submission>();
  private readonly jobs = new Map<string, Submission>();
  private server?: Server;
  private solc?: Solc;
  private scanned = 0n;
  private readonly creations = new Map<string, string>();
  port = 0;

  private readonly rpcUrl: string;
  private readonly compile: (submission: Submission) => boolean;

  /**
   * `compile` picks the submissions that are compiled and compared with the chain (soljson takes
   * seconds per contract); the others pass when their code exists, their compiler is the one we
   * build with, their source is in the input and their constructor arguments match the creation.
   */
  constructor(rpcUrl: string, options: { compile?: (submission: Submission) => boolean } = {}) {
    this.rpcUrl = rpcUrl;
    this.compile = options.compile ?? (() => true);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: Error) => {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ status: "0", message: "NOTOK", result: error.message }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const explorer = url.pathname.startsWith("/etherscan/")
      ? "etherscan"
      : url.pathname.startsWith("/blockscout/")
        ? "blockscout"
        : undefined;
    const reply = (body: unknown, status = 200) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (!explorer) return reply({ status: "0", message: "NOTOK", result: `no API at ${url.pathname}` }, 404);
    const query = Object.fromEntries(url.searchParams);
    this.requests.push({ explorer, method: req.method ?? "GET", query });
    if (explorer === "etherscan" && (query.chainid !== "84532" || !query.apikey))
      return reply({ status: "0", message: "NOTOK", result: "Missing or unsupported chainid / Invalid API Key" });

    if (query.module === "contract" && query.action === "getsourcecode") {
      const done = this.verified.get(`${explorer}:${String(query.address).toLowerCase()}`);
      return reply({
        status: "1",
        message: "OK",
        result: [{ SourceCode: done ? done.sourceCode : "", ContractName: done?.contractname ?? "" }],
      });
    }
    if (query.module === "contract" && query.action === "verifysourcecode" && req.method === "POST") {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
      const submission: Submission = {
        explorer,
        chainid: query.chainid,
        apikey: query.apikey,
        contractaddress: form.get("contractaddress") ?? "",
        contractname: form.get("contractname") ?? "",
        compilerversion: form.get("compilerversion") ?? "",
        codeformat: form.get("codeformat") ?? "",
        constructorArguments: form.get("constructorArguments") ?? form.get("constructorArguements") ?? "",
        sourceCode: form.get("sourceCode") ?? "",
      };
      this.submissions.push(submission);
      const guid = `guid-${this.submissions.length}`;
      this.jobs.set(guid, submission);
      return reply({ status: "1", message: "OK", result: guid });
    }
    if (query.module === "contract" && query.action === "checkverifystatus") {
      const job = this.jobs.get(String(query.guid));
      if (!job) return reply({ status: "0", message: "NOTOK", result: "Fail - Unable to verify: unknown guid" });
      job.verdict ??= await this.judge(job);
      if (job.verdict !== "Pass - Verified") return reply({ status: "0", message: "NOTOK", result: job.verdict });
      this.verified.set(`${explorer}:${job.contractaddress.toLowerCase()}`, job);
      return reply({ status: "1", message: "OK", result: "Pass - Verified" });
    }
    return reply({ status: "0", message: "NOTOK", result: `unsupported ${query.module}/${query.action}` });
  }

  /** What an explorer decides: compile the input, compare with the chain. */
  private async judge(s: Submission): Promise<string> {
    if (s.codeformat !== "solidity-standard-json-input") return `Fail - Unable to verify: codeformat ${s.codeformat}`;
    const client = createPublicClient({ transport: http(this.rpcUrl) });
    const onChain = await client.getCode({ address: s.contractaddress as Hex });
    if (!onChain || onChain === "0x") return `Unable to locate ContractCode at ${s.contractaddress}`;
    this.solc ??= createRequire(import.meta.url)("solc") as Solc;
    const wanted = s.compilerversion.replace(/^v/, "");
    if (this.solc.version().replace(/\.Emscripten\.clang$/, "") !== wanted)
      return `Fail - Unable to verify: compiler ${s.compilerversion} is not v${this.solc.version()}`;
    // The creation transaction's input ends with the constructor arguments the explorer is given.
    const creation = await this.creationInput(s.contractaddress);
    if (creation === undefined || !creation.endsWith(s.constructorArguments.replace(/^0x/, "")))
      return "Fail - Unable to verify. Wrong constructor arguments";
    const file = s.contractname.slice(0, s.contractname.lastIndexOf(":"));
    if (!(JSON.parse(s.sourceCode) as { sources: Record<string, unknown> }).sources[file])
      return `Fail - Unable to verify: ${file} is not in the submitted sources`;
    if (!this.compile(s)) return "Pass - Verified";
    const input = JSON.parse(s.sourceCode) as { settings: Record<string, unknown> };
    input.settings.outputSelection = {
      "*": { "*": ["evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences"] },
    };
    const output = JSON.parse(this.solc.compile(JSON.stringify(input))) as SolcOutput;
    const errors = (output.errors ?? []).filter((e) => e.severity === "error");
    if (errors.length > 0) return `Fail - Unable to verify: ${errors[0]!.formattedMessage}`;
    const name = s.contractname.slice(s.contractname.lastIndexOf(":") + 1);
    const compiled = output.contracts?.[file]?.[name];
    if (!compiled) return `Fail - Unable to verify: ${s.contractname} not in the compiler output`;
    const deployed = compiled.evm.deployedBytecode;
    const refs = deployed.immutableReferences;
    if (maskImmutables(deployed.object, refs) !== maskImmutables(onChain.slice(2), refs))
      return "Fail - Unable to verify. Compiled contract deployment bytecode does NOT match the transaction deployment bytecode.";
    return "Pass - Verified";
  }

  /** The input of the transaction that created `address` (one incremental scan of the chain). */
  private async creationInput(address: string): Promise<string | undefined> {
    const client = createPublicClient({ transport: http(this.rpcUrl) });
    const head = await client.getBlockNumber();
    for (; this.scanned <= head; this.scanned++) {
      const block = await client.getBlock({ blockNumber: this.scanned, includeTransactions: true });
      for (const tx of block.transactions) {
        if (tx.to !== null) continue;
        const receipt = await client.getTransactionReceipt({ hash: tx.hash });
        if (receipt.contractAddress) this.creations.set(receipt.contractAddress.toLowerCase(), tx.input.slice(2));
      }
    }
    return this.creations.get(address.toLowerCase());
  }
}

/**
 * A stand-in for Snapshot's sequencer on 127.0.0.1 (the real hub is unreachable here). It checks
 * each envelope the way the hub does: the EIP-712 domain, the types of the message kind, the
 * signature (viem verifyTypedData), the `from` field and the timestamp; for a proposal, the space's
 * voting rules as snapshot-sequencer's proposal writer applies them (start = timestamp + delay,
 * end - start = period, the space's type, an end in the future; same error wording); then records
 * the message.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type Address, type Hex, keccak256, verifyTypedData } from "viem";

const PROPOSAL_TYPES = {
  Proposal: [
    { name: "from", type: "string" },
    { name: "space", type: "string" },
    { name: "timestamp", type: "uint64" },
    { name: "type", type: "string" },
    { name: "title", type: "string" },
    { name: "body", type: "string" },
    { name: "discussion", type: "string" },
    { name: "choices", type: "string[]" },
    { name: "labels", type: "string[]" },
    { name: "start", type: "uint64" },
    { name: "end", type: "uint64" },
    { name: "snapshot", type: "uint64" },
    { name: "plugins", type: "string" },
    { name: "privacy", type: "string" },
    { name: "app", type: "string" },
  ],
};
const VOTE_TYPES = {
  Vote: [
    { name: "from", type: "string" },
    { name: "space", type: "string" },
    { name: "timestamp", type: "uint64" },
    { name: "proposal", type: "string" },
    { name: "choice", type: "uint32" },
    { name: "reason", type: "string" },
    { name: "app", type: "string" },
    { name: "metadata", type: "string" },
  ],
};

export interface Recorded {
  id: Hex;
  kind: "proposal" | "vote";
  address: Address;
  message: Record<string, unknown>;
}

export interface SequencerSpace {
  voting?: { delay?: number; period?: number; type?: string };
}

export async function startFakeSequencer(space: SequencerSpace = {}) {
  const recorded: Recorded[] = [];
  const server = createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > 64 * 1024) req.destroy();
      else chunks.push(c);
    });
    req.on("end", async () => {
      try {
        const envelope = JSON.parse(Buffer.concat(chunks).toString()) as {
          address: Address;
          sig: Hex;
          data: { domain: Record<string, unknown>; types: Record<string, unknown>; message: Record<string, unknown> };
        };
        const { domain, types, message } = envelope.data;
        if (JSON.stringify(domain) !== JSON.stringify({ name: "snapshot", version: "0.1.4" }))
          throw new Error("wrong domain");
        const kind = "Proposal" in types ? "proposal" : "Vote" in types ? "vote" : undefined;
        const expected = kind === "proposal" ? PROPOSAL_TYPES : VOTE_TYPES;
        if (!kind || JSON.stringify(types) !== JSON.stringify(expected)) throw new Error("wrong types");
        if (String(message.from).toLowerCase() !== envelope.address.toLowerCase()) throw new Error("wrong from");
        if (Math.abs(Number(message.timestamp) - Date.now() / 1000) > 300) throw new Error("wrong timestamp");
        if (kind === "vote" && !recorded.some((r) => r.kind === "proposal" && r.id === message.proposal))
          throw new Error("unknown proposal");
        if (kind === "proposal") {
          const [timestamp, start, end] = [message.timestamp, message.start, message.end].map(Number) as [
            number,
            number,
            number,
          ];
          if (end <= Math.floor(Date.now() / 1000)) throw new Error("proposal end date must be in the future");
          const voting = space.voting ?? {};
          if (voting.delay && start !== timestamp + voting.delay) throw new Error("invalid voting delay");
          if (voting.period && end - start !== voting.period) throw new Error("invalid voting period");
          if (voting.type && message.type !== voting.type) throw new Error("invalid voting type");
        }
        // The message shape is checked by the types above; viem's generics cannot see that.
        const ok = await verifyTypedData({
          address: envelope.address,
          domain,
          types: expected,
          primaryType: kind === "proposal" ? "Proposal" : "Vote",
          message,
          signature: envelope.sig,
        } as unknown as Parameters<typeof verifyTypedData>[0]);
        if (!ok) throw new Error("wrong signature");
        const id = keccak256(envelope.sig);
        recorded.push({ id, kind, address: envelope.address, message });
        reply(200, {
          id,
          ipfs: `bafy${id.slice(2, 20)}`,
          relayer: { address: "0x0000000000000000000000000000000000000001", receipt: "0x" },
        });
      } catch (error) {
        reply(400, { error: "client_error", error_description: (error as Error).message });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    recorded,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

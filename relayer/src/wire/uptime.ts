/**
 * The UPTIME link cell (circuit id 0): an uptime attestation one relay's signer made for the relay
 * it pushes it to, in the exact fields EpochRewards.submitUptime verifies (contracts/EpochRewards.sol,
 * `Uptime(relayer, epoch, probes, answered, measurements)` plus the signer and its signature).
 *
 * Fixed layout, 152 bytes, big-endian:
 *   relayer 20 | epoch u64 | signer 20 | probes u32 | answered u32 | measurements 32 | r 32 | vs 32
 *
 * The receiver checks the signature and the signer's registration before keeping it
 * (node/uptime.ts): the bytes here are only length-checked.
 */
import { type Address, getAddress, type Hex } from "viem";
import type { SignedAttestation } from "../accounting/receipts.ts";
import { ProtocolError } from "./cell.ts";

export const UPTIME_CELL_BYTES = 20 + 8 + 20 + 4 + 4 + 32 + 32 + 32;

/** An attestation for `relayer`'s uptime in `epoch`, as it travels between relays. */
export interface UptimeAttestation extends SignedAttestation {
  relayer: Address;
  epoch: bigint;
}

const hex = (bytes: Buffer): Hex => `0x${bytes.toString("hex")}`;

function put(out: Buffer, offset: number, value: Hex, bytes: number): number {
  const raw = Buffer.from(value.slice(2), "hex");
  if (raw.length !== bytes) throw new RangeError(`${value} is not ${bytes} bytes`);
  raw.copy(out, offset);
  return offset + bytes;
}

export function encodeUptime(a: UptimeAttestation): Buffer {
  const out = Buffer.alloc(UPTIME_CELL_BYTES);
  let o = put(out, 0, a.relayer, 20);
  out.writeBigUInt64BE(a.epoch, o);
  o = put(out, o + 8, a.signer, 20);
  out.writeUInt32BE(a.probes, o);
  out.writeUInt32BE(a.answered, o + 4);
  o = put(out, o + 8, a.measurements, 32);
  o = put(out, o, a.r, 32);
  put(out, o, a.vs, 32);
  return out;
}

export function decodeUptime(body: Buffer): UptimeAttestation {
  if (body.length !== UPTIME_CELL_BYTES) throw new ProtocolError(`UPTIME body of ${body.length} bytes`);
  return {
    relayer: getAddress(hex(body.subarray(0, 20))),
    epoch: body.readBigUInt64BE(20),
    signer: getAddress(hex(body.subarray(28, 48))),
    probes: body.readUInt32BE(48),
    answered: body.readUInt32BE(52),
    measurements: hex(body.subarray(56, 88)),
    r: hex(body.subarray(88, 120)),
    vs: hex(body.subarray(120, 152)),
  };
}

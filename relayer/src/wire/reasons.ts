/**
 * Why a stream could not be opened or was ended, as carried in END cells from the exit back to
 * the entry. The values are those of RFC 1928's REP field so that the SOCKS5 entry can pass the
 * exit's verdict to the application unchanged (a refused target is "connection refused", not a
 * generic failure). 0 means "ended normally".
 */
export const StreamReason = {
  done: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

export type StreamReason = (typeof StreamReason)[keyof typeof StreamReason];

const KNOWN = new Set<number>(Object.values(StreamReason));

/** Parses a reason byte from the wire; unknown values become a general failure. */
export function parseStreamReason(byte: number): StreamReason {
  return (KNOWN.has(byte) ? byte : StreamReason.generalFailure) as StreamReason;
}

/** Thrown when a stream cannot be opened; `reason` says why, in RFC 1928 terms. */
export class StreamOpenError extends Error {
  override name = "StreamOpenError";
  readonly reason: StreamReason;
  constructor(reason: StreamReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/**
 * IP address bytes <-> text: the one place that does it, pure and free of I/O, so that wire/
 * (BEGIN targets), socks/ (what the application sent) and exit/ (the policy) agree byte for byte.
 */

/** Dotted-quad text of 4 bytes. */
export function formatIPv4(bytes: Uint8Array): string {
  if (bytes.length !== 4) throw new RangeError(`IPv4 address needs 4 bytes, got ${bytes.length}`);
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/**
 * RFC 5952 canonical text of 16 bytes: lower-case hex, no leading zeros, the longest run (the
 * first on a tie) of two or more zero groups written `::`, and IPv4-mapped addresses written
 * `::ffff:a.b.c.d` (section 5) so that policies and logs show the IPv4 address they really are.
 */
export function formatIPv6(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new RangeError(`IPv6 address needs 16 bytes, got ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(bytes.subarray(12))}`;
  }
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never compressed (RFC 5952 section 4.2.2)
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** The 4 bytes of a dotted quad with no leading zeros, or undefined if `text` is not one. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i] ?? "";
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return undefined;
    out[i] = Number(part);
  }
  return out;
}

/**
 * The 16 bytes of an IPv6 address in any RFC 4291 text form (with `::` and an optional dotted
 * tail), or undefined. Zone identifiers (`%eth0`) are not accepted: no Internet target has one.
 */
export function parseIPv6(text: string): Uint8Array | undefined {
  if (text.length > 45) return undefined; // longest valid form: 6 groups of 4 + ":" + dotted quad
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : (halves[0] ?? "").split(":");
  const tail = halves.length === 2 ? (halves[1] === "" ? [] : (halves[1] ?? "").split(":")) : [];
  const words: number[] = [];
  const tailWords: number[] = [];
  const take = (parts: string[], into: number[], dottedAllowed: boolean): boolean => {
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] ?? "";
      if (dottedAllowed && i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIPv4(part);
        if (!v4) return false;
        into.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return false;
      into.push(parseInt(part, 16));
    }
    return true;
  };
  if (halves.length === 2) {
    if (!take(head, words, false) || !take(tail, tailWords, true)) return undefined;
    if (words.length + tailWords.length > 7) return undefined; // "::" stands for at least one group
    while (words.length + tailWords.length < 8) words.push(0);
  } else {
    if (!take(head, words, true) || words.length !== 8) return undefined;
  }
  words.push(...tailWords);
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/**
 * The IPv4 address that an IPv6 address carries and is routed to: IPv4-mapped (::ffff:0:0/96),
 * NAT64 well-known prefix (64:ff9b::/96, RFC 6052) and 6to4 (2002::/16, RFC 3056). The exit policy
 * checks this address too, so `::ffff:127.0.0.1` or `64:ff9b::a00:1` cannot reach what
 * `127.0.0.1` or `10.0.0.1` may not.
 */
export function embeddedIPv4(bytes: Uint8Array): string | undefined {
  if (bytes.length !== 16) return undefined;
  const zeroUntil = (end: number) => bytes.subarray(0, end).every((b) => b === 0);
  if (zeroUntil(10) && bytes[10] === 0xff && bytes[11] === 0xff) return formatIPv4(bytes.subarray(12));
  const nat64 = [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];
  if (nat64.every((b, i) => bytes[i] === b)) return formatIPv4(bytes.subarray(12));
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return formatIPv4(bytes.subarray(2, 6));
  return undefined;
}

/**
 * Address ranges an exit refuses by default, and the parsing of operators' CIDR lists.
 *
 * `opensWithPrivate` marks what `allowPrivateTargets` opens (hosts that exist but are not on the
 * public Internet). The rest is refused even then, because no TCP connection to it is legitimate:
 * an unspecified address (0.0.0.0 connects to the local host on Linux — a classic bypass),
 * multicast, broadcast and reserved space. Only an explicit allow entry opens those.
 */
import { BlockList, isIP } from "node:net";

export type SpecialRange = { cidr: string; label: string; opensWithPrivate: boolean };

export const SPECIAL_RANGES: readonly SpecialRange[] = [
  { cidr: "0.0.0.0/8", label: "unspecified", opensWithPrivate: false },
  { cidr: "::/128", label: "unspecified", opensWithPrivate: false },
  { cidr: "224.0.0.0/4", label: "multicast", opensWithPrivate: false },
  { cidr: "ff00::/8", label: "multicast", opensWithPrivate: false },
  { cidr: "240.0.0.0/4", label: "reserved or broadcast", opensWithPrivate: false }, // has 255.255.255.255
  { cidr: "127.0.0.0/8", label: "loopback", opensWithPrivate: true },
  { cidr: "::1/128", label: "loopback", opensWithPrivate: true },
  { cidr: "10.0.0.0/8", label: "private", opensWithPrivate: true },
  { cidr: "172.16.0.0/12", label: "private", opensWithPrivate: true },
  { cidr: "192.168.0.0/16", label: "private", opensWithPrivate: true },
  { cidr: "fc00::/7", label: "private", opensWithPrivate: true },
  { cidr: "169.254.0.0/16", label: "link-local", opensWithPrivate: true },
  { cidr: "fe80::/10", label: "link-local", opensWithPrivate: true },
  { cidr: "100.64.0.0/10", label: "carrier-grade NAT", opensWithPrivate: true },
  // Not routed on the Internet, so a target here can only be something local to the exit.
  { cidr: "192.0.0.0/24", label: "IETF protocol assignments", opensWithPrivate: true },
  { cidr: "192.0.2.0/24", label: "documentation", opensWithPrivate: true },
  { cidr: "198.51.100.0/24", label: "documentation", opensWithPrivate: true },
  { cidr: "203.0.113.0/24", label: "documentation", opensWithPrivate: true },
  { cidr: "2001:db8::/32", label: "documentation", opensWithPrivate: true },
  { cidr: "198.18.0.0/15", label: "benchmarking", opensWithPrivate: true },
  { cidr: "100::/64", label: "discard-only", opensWithPrivate: true },
  { cidr: "64:ff9b:1::/48", label: "local-use NAT64", opensWithPrivate: true },
  // IPv4-compatible IPv6 (deprecated): never a real destination; :: and ::1 are matched above.
  { cidr: "::/96", label: "IPv4-compatible IPv6", opensWithPrivate: false },
];

/** Adds "a.b.c.d", "a.b.c.d/n", "x::y" or "x::y/n" to `list`; throws naming `key` on bad input. */
export function addEntry(list: BlockList, entry: string, key: string): void {
  const slash = entry.indexOf("/");
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const family = isIP(address);
  if (family === 0 || address.includes("%")) {
    throw new Error(`exit policy ${key}: "${entry}" is not an IP address or CIDR range`);
  }
  const type = family === 4 ? "ipv4" : "ipv6";
  if (slash < 0) {
    list.addAddress(address, type);
    return;
  }
  const prefixText = entry.slice(slash + 1);
  const prefix = Number(prefixText);
  const max = family === 4 ? 32 : 128;
  if (!/^[0-9]{1,3}$/.test(prefixText) || prefix > max) {
    throw new Error(`exit policy ${key}: "${entry}" has a prefix length outside 0..${max}`);
  }
  list.addSubnet(address, prefix, type);
}

/**
 * One BlockList per label, in SPECIAL_RANGES order (the first match decides), so a refusal can say
 * which rule matched.
 */
export function buildSpecialLists(): Array<{ label: string; opensWithPrivate: boolean; list: BlockList }> {
  const out: Array<{ label: string; opensWithPrivate: boolean; list: BlockList }> = [];
  for (const range of SPECIAL_RANGES) {
    let group = out.find((g) => g.label === range.label && g.opensWithPrivate === range.opensWithPrivate);
    if (!group) {
      group = { label: range.label, opensWithPrivate: range.opensWithPrivate, list: new BlockList() };
      out.push(group);
    }
    addEntry(group.list, range.cidr, "built-in range");
  }
  return out;
}

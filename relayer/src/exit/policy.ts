/**
 * The exit policy: which resolved addresses and ports an exit may connect to.
 *
 * An exit connects wherever strangers ask, so by default it refuses everything that is not the
 * public Internet — otherwise any client could reach the operator's LAN, cloud metadata service
 * (169.254.169.254) or the node's own admin ports. The policy is applied to IP addresses only,
 * after DNS resolution, and the exit then connects to that very address (see connect.ts).
 *
 * Precedence: deny entries win over everything; allow entries open any built-in range (never the
 * node's own addresses); `allowPrivateTargets` opens the private, loopback, link-local and own
 * addresses but not unspecified, multicast or reserved space.
 */
import { BlockList, isIP } from "node:net";
import { networkInterfaces } from "node:os";
import type { Logger } from "../log.ts";
import { embeddedIPv4, parseIPv6 } from "./address.ts";
import { addEntry, buildSpecialLists } from "./ranges.ts";

export interface ExitPolicyOptions {
  /** Open private, loopback, link-local, CGNAT and own addresses (development only; logs a warning). */
  allowPrivateTargets?: boolean;
  /**
   * Open loopback only — 127.0.0.0/8, ::1 and their IPv4-mapped forms — for a local demo whose
   * site runs on this host: nothing private, link-local or translated (NAT64, 6to4). Logs a warning.
   */
  allowLoopbackTargets?: boolean;
  /** CIDR ranges or single IPs to open even though a built-in rule refuses them. */
  allow?: string[];
  /** CIDR ranges or single IPs always refused; wins over `allow` and `allowPrivateTargets`. */
  deny?: string[];
  /** Extra addresses of this node (e.g. a public IP behind 1:1 NAT) refused like its interfaces. */
  ownAddresses?: string[];
  /** Ports (or inclusive [low, high] ranges) that may be reached; all of 1..65535 when unset. */
  allowPorts?: Array<number | [number, number]>;
  logger?: Logger;
}

/** Verdict on one resolved address; `why` is short, has no address in it and may be logged. */
export type PolicyVerdict = { ok: true } | { ok: false; why: string };

export interface ExitPolicy {
  /** Whether this exit may connect to `address` (an IP literal, not a name) on `port`. */
  check(address: string, port: number): PolicyVerdict;
}

/** Interfaces change (DHCP, hot-plugged links), so the node's own addresses are re-read this often. */
const OWN_ADDRESSES_TTL_MS = 30_000;

/**
 * One way of seeing an address. `translated` marks the IPv4 address that a NAT64 (64:ff9b::/96)
 * or 6to4 (2002::/16) address embeds: a packet to such an address goes to a translator or relay
 * somewhere on the network, not to that IPv4 host on the exit's own network, so permissions for
 * local ranges (allowPrivateTargets, allow entries) never open it; refusals still apply to it.
 */
type Form = { address: string; type: "ipv4" | "ipv6"; translated: boolean };

/**
 * Builds an exit policy. Throws on a malformed entry, naming the option and the entry, so that a
 * bad configuration stops the node at start-up instead of silently opening or closing ranges.
 */
export function createExitPolicy(options: ExitPolicyOptions = {}): ExitPolicy {
  const allow = new BlockList();
  const deny = new BlockList();
  const extraOwn = new BlockList();
  for (const entry of options.allow ?? []) addEntry(allow, entry, "allow");
  for (const entry of options.deny ?? []) addEntry(deny, entry, "deny");
  for (const entry of options.ownAddresses ?? []) addEntry(extraOwn, entry, "ownAddresses");
  const ports = parsePorts(options.allowPorts);
  const special = buildSpecialLists();
  const allowPrivate = options.allowPrivateTargets === true;
  const allowLoopback = options.allowLoopbackTargets === true;
  if (allowLoopback && !allowPrivate) {
    options.logger?.warn("exit policy opens loopback targets (127.0.0.0/8, ::1): local demo only", {
      allowLoopbackTargets: true,
    });
  }
  if (allowPrivate) {
    options.logger?.warn(
      "EXIT POLICY OPENS PRIVATE AND LOOPBACK TARGETS: clients can reach this host and its networks; development only",
      { allowPrivateTargets: true },
    );
  }

  let own = new BlockList();
  let ownReadAt = -Infinity;
  const ownAddresses = (): BlockList => {
    const now = Date.now();
    if (now - ownReadAt < OWN_ADDRESSES_TTL_MS) return own;
    const list = new BlockList();
    for (const infos of Object.values(networkInterfaces())) {
      for (const info of infos ?? []) {
        // Loopback is a built-in range already; skipping it here lets `allow: ["127.0.0.2"]` work.
        if (info.internal) continue;
        list.addAddress(info.address, info.family === "IPv4" ? "ipv4" : "ipv6");
      }
    }
    own = list;
    ownReadAt = now;
    return own;
  };

  const matches = (list: BlockList, forms: Form[]) => forms.some((f) => list.check(f.address, f.type));
  const direct = (forms: Form[]) => forms.filter((f) => !f.translated);

  return {
    check(address: string, port: number): PolicyVerdict {
      if (!Number.isInteger(port) || port < 1 || port > 65535) return { ok: false, why: "port outside 1..65535" };
      if (ports && !ports(port)) return { ok: false, why: "port not in the exit's allowed ports" };
      const forms = addressForms(address);
      if (!forms) return { ok: false, why: "not an IP address without zone" };
      if (matches(deny, forms)) return { ok: false, why: "address denied by the exit policy" };
      if (!allowPrivate && (matches(extraOwn, forms) || matches(ownAddresses(), forms))) {
        return { ok: false, why: "address of the exit node itself" };
      }
      if (matches(allow, direct(forms))) return { ok: true };
      // The first range that matches decides, so ::1 is "loopback" (opened by allowPrivateTargets)
      // rather than also "IPv4-compatible" (never opened); every form of the address must pass.
      for (const form of forms) {
        const group = special.find((g) => g.list.check(form.address, form.type));
        if (!group) continue;
        if (form.translated) return { ok: false, why: `${group.label} address behind NAT64 or 6to4` };
        if (allowLoopback && group.label === "loopback") continue;
        if (!(allowPrivate && group.opensWithPrivate)) return { ok: false, why: `${group.label} address` };
      }
      return { ok: true };
    },
  };
}

/**
 * The address as the policy must see it, after canonicalisation. An IPv4-mapped address
 * (::ffff:a.b.c.d) is that IPv4 host itself (the kernel connects to it over IPv4), so it is seen
 * as both forms, neither translated. NAT64 and 6to4 addresses are IPv6 hosts elsewhere that carry
 * an IPv4 address: seen as themselves plus that IPv4 address, marked translated. Zone-scoped IPv6
 * (`fe80::1%eth0`) is refused outright: BlockList does not match it against fe80::/10, and no
 * Internet target has a zone.
 */
function addressForms(address: string): Form[] | undefined {
  const family = isIP(address);
  if (family === 4) return [{ address, type: "ipv4", translated: false }];
  if (family !== 6 || address.includes("%")) return undefined;
  const bytes = parseIPv6(address);
  if (!bytes) return undefined;
  const forms: Form[] = [{ address, type: "ipv6", translated: false }];
  const v4 = embeddedIPv4(bytes);
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (v4) forms.push({ address: v4, type: "ipv4", translated: !mapped });
  return forms;
}

function parsePorts(entries: ExitPolicyOptions["allowPorts"]): ((port: number) => boolean) | undefined {
  if (entries === undefined) return undefined;
  const ranges: Array<[number, number]> = entries.map((entry) => {
    const [low, high] = typeof entry === "number" ? [entry, entry] : entry;
    const valid = (p: number) => Number.isInteger(p) && p >= 1 && p <= 65535;
    if (!valid(low) || !valid(high) || low > high) {
      throw new Error(
        `exit policy allowPorts: ${JSON.stringify(entry)} is not a port or [low, high] range in 1..65535`,
      );
    }
    return [low, high];
  });
  return (port) => ranges.some(([low, high]) => port >= low && port <= high);
}

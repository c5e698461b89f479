/**
 * The exit: the last relay of a circuit, which connects to the application's target under an
 * exit policy. Nothing here knows about SOCKS or circuits.
 */
export {
  type AddressType,
  type Target,
  formatIPv4,
  formatIPv6,
  parseIPv4,
  parseIPv6,
  embeddedIPv4,
} from "./address.ts";
export { type ExitPolicy, type ExitPolicyOptions, type PolicyVerdict, createExitPolicy } from "./policy.ts";
export { type ConnectTargetOptions, type Lookup, connectTarget } from "./connect.ts";

/**
 * Which network addresses an http delta fetch may connect to (SSRF protection).
 *
 * A delta URI, or a redirect it answers with, or a DNS answer for its host, must never make the
 * gateway connect to itself, to the cloud metadata service (169.254.169.254), or into the private
 * network it runs in, unless the operator said so: `allowPrivateAddresses: true`, or the address
 * written as an IP literal in `allowedHosts` (listing `10.0.0.5` is explicit enough).
 *
 * The check runs at two places, both before a connection exists: on the URL's host when it is an
 * IP literal (no DNS lookup happens for those), and on every address a DNS lookup returns, inside
 * the connection's `lookup` (so a name that resolves, or re-resolves, to a private address is
 * refused at connect time, redirect targets included). `classifyAddress` is a pure function so the
 * ranges can be tested without sending traffic anywhere.
 */
import { isIP, type LookupFunction } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';

/** `public` is connectable by default; every other class needs an explicit allowance. */
export type AddressClass = 'public' | 'loopback' | 'link-local' | 'private' | 'unspecified' | 'multicast' | 'reserved';

interface Range {
  readonly bits: bigint;
  readonly prefix: number;
  readonly kind: Exclude<AddressClass, 'public'>;
}

const IPV4_RANGES: readonly Range[] = [
  v4('0.0.0.0', 8, 'unspecified'), // "this network"; 0.0.0.0 reaches the local host on Linux
  v4('10.0.0.0', 8, 'private'),
  v4('100.64.0.0', 10, 'private'), // carrier-grade NAT shared space
  v4('127.0.0.0', 8, 'loopback'),
  v4('169.254.0.0', 16, 'link-local'), // includes the cloud metadata service
  v4('172.16.0.0', 12, 'private'),
  v4('192.0.0.0', 24, 'reserved'), // IETF protocol assignments
  v4('192.168.0.0', 16, 'private'),
  v4('198.18.0.0', 15, 'reserved'), // benchmarking
  v4('224.0.0.0', 4, 'multicast'),
  v4('240.0.0.0', 4, 'reserved'), // includes the broadcast address 255.255.255.255
];

const IPV6_RANGES: readonly Range[] = [
  v6('::', 128, 'unspecified'),
  v6('::1', 128, 'loopback'),
  v6('fc00::', 7, 'private'), // unique local
  v6('fe80::', 10, 'link-local'),
  v6('fec0::', 10, 'private'), // deprecated site-local
  v6('ff00::', 8, 'multicast'),
];

/** IPv6 prefixes that carry an IPv4 address in their last 32 bits: judged by that address. */
const IPV4_CARRIERS: readonly { bits: bigint; prefix: number }[] = [
  { bits: parseV6('::ffff:0:0'), prefix: 96 }, // IPv4-mapped
  { bits: parseV6('64:ff9b::'), prefix: 96 }, // NAT64 well-known prefix
  { bits: parseV6('::'), prefix: 96 }, // IPv4-compatible (deprecated); :: and ::1 are matched first
];

/**
 * The class of an IP address (v4 dotted quad or v6, with or without brackets, zone ids ignored).
 * Returns null for a string that is not an IP address.
 */
export function classifyAddress(address: string): AddressClass | null {
  const text = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(text);
  if (family === 4) return classifyV4(parseV4(text));
  if (family !== 6) return null;
  const bits = parseV6(text);
  for (const range of IPV6_RANGES) if (inRange(bits, range, 128)) return range.kind;
  for (const carrier of IPV4_CARRIERS) {
    if (inRange(bits, carrier, 128)) return classifyV4(Number(bits & 0xffffffffn));
  }
  return 'public';
}

export interface AddressPolicyOptions {
  /** Allow every address class (the operator's explicit opt-in). */
  readonly allowPrivateAddresses: boolean;
  /** Addresses allowed whatever their class (IP literals listed in `allowedHosts`). */
  readonly allowedAddresses: readonly string[];
}

/** Why an address is refused. */
export interface AddressRefusal {
  readonly address: string;
  readonly kind: Exclude<AddressClass, 'public'>;
}

export class AddressPolicy {
  private readonly allowed: ReadonlySet<string>;

  constructor(private readonly options: AddressPolicyOptions) {
    this.allowed = new Set(options.allowedAddresses.map(canonicalAddress).filter((a): a is string => a !== null));
  }

  /** Null when `address` (an IP) may be connected to, else why not. Non-IP strings are not judged. */
  refusal(address: string): AddressRefusal | null {
    if (this.options.allowPrivateAddresses) return null;
    const kind = classifyAddress(address);
    if (kind === null || kind === 'public') return null;
    if (this.allowed.has(canonicalAddress(address)!)) return null;
    return { address: address.replace(/^\[|\]$/g, ''), kind };
  }

  /**
   * A `lookup` for `net.connect` that resolves with `inner` (default `dns.lookup`) and fails the
   * connection, before it is attempted, when any returned address is refused: one bad answer
   * among several is enough (a rebinding name must not get a second chance on a retry).
   */
  guardLookup(
    inner: LookupFunction = dnsLookup,
    refuse: (hostname: string, refusal: AddressRefusal) => Error,
  ): LookupFunction {
    const guarded = (
      hostname: string,
      options: Parameters<LookupFunction>[1],
      callback: Parameters<LookupFunction>[2],
    ): void => {
      inner(hostname, options, (error, address, family) => {
        if (error) return callback(error, address, family);
        const answers = Array.isArray(address) ? address.map((a) => a.address) : [address];
        for (const answer of answers) {
          const refusal = this.refusal(answer);
          if (refusal !== null) return callback(refuse(hostname, refusal), address, family);
        }
        callback(null, address, family);
      });
    };
    return guarded;
  }
}

/** One spelling per address (so `::ffff:7f00:1` and `::ffff:127.0.0.1` compare equal), or null. */
function canonicalAddress(address: string): string | null {
  const text = address
    .trim()
    .replace(/^\[|\]$/g, '')
    .replace(/%.*$/, '');
  const family = isIP(text);
  if (family === 4) return `v4:${parseV4(text)}`;
  if (family !== 6) return null;
  const bits = parseV6(text);
  if (inRange(bits, IPV4_CARRIERS[0]!, 128)) return `v4:${Number(bits & 0xffffffffn)}`; // IPv4-mapped
  return `v6:${bits.toString(16)}`;
}

function classifyV4(value: number): AddressClass {
  const bits = BigInt(value);
  for (const range of IPV4_RANGES) if (inRange(bits, range, 32)) return range.kind;
  return 'public';
}

function inRange(bits: bigint, range: { bits: bigint; prefix: number }, width: number): boolean {
  const shift = BigInt(width - range.prefix);
  return bits >> shift === range.bits >> shift;
}

function v4(address: string, prefix: number, kind: Range['kind']): Range {
  return { bits: BigInt(parseV4(address)), prefix, kind };
}

function v6(address: string, prefix: number, kind: Range['kind']): Range {
  return { bits: parseV6(address), prefix, kind };
}

function parseV4(text: string): number {
  return text.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** A valid IPv6 address (as `net.isIP` accepts it, zone id removed) as a 128-bit integer. */
function parseV6(text: string): bigint {
  let body = text.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two hex groups.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (quad) {
    const value = parseV4(quad[1]!);
    body = `${body.slice(0, quad.index)}${(value >>> 16).toString(16)}:${(value & 0xffff).toString(16)}`;
  }
  const [head, tail] = body.includes('::') ? body.split('::') : [body, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail === undefined ? [] : tail ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...new Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailGroups];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

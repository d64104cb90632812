/**
 * Which peer addresses the relay refuses (node-turn relays anywhere). The defaults follow
 * coturn's recommended denied-peer-ip list: an open relay toward loopback, private networks
 * or cloud metadata (169.254.169.254) would let any credential holder reach the operator's
 * internal services. TURN_DENY_PEERS replaces the list; it takes CIDRs and these group names.
 */
import { BlockList, isIP } from 'node:net';
import { ipBytes } from './ip.js';

export const DENY_GROUPS: Readonly<Record<string, readonly string[]>> = {
  unspecified: ['0.0.0.0/8', '::/128'],
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  cgnat: ['100.64.0.0/10'],
  'link-local': ['169.254.0.0/16', 'fe80::/10'],
  multicast: ['224.0.0.0/4', 'ff00::/8'],
  reserved: [
    '192.0.0.0/24', '192.0.2.0/24', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '240.0.0.0/4',
    '255.255.255.255/32', '64:ff9b::/96', '100::/64', '2001:db8::/32',
  ],
  // IPv6 spellings that reach IPv4 hosts: IPv4-compatible, IPv4-translated,
  // NAT64 (well-known and local-use), Teredo, 6to4. Denied whole by default, as coturn's
  // recommended denied-peer-ip list does; lifted, their embedded IPv4 still meets the IPv4 rules.
  // (IPv4-mapped is not listed: BlockList checks IPv4 addresses as ::ffff:a.b.c.d against IPv6
  // rules, so denying it would deny every IPv4 peer; mapped spellings meet the IPv4 rules instead.)
  'ipv6-transition': ['::/96', '::ffff:0:0:0/96', '64:ff9b::/96', '64:ff9b:1::/48', '2001::/32', '2002::/16'],
};

export const DEFAULT_DENY = Object.keys(DENY_GROUPS);

export class PeerFilterError extends Error {
  constructor(readonly entry: string) {
    super(`not a CIDR range or group (${Object.keys(DENY_GROUPS).join(', ')}, none): ${entry}`);
  }
}

export interface PeerFilter {
  denies(address: string): boolean;
  /** the effective ranges, for the start-up log */
  readonly ranges: readonly string[];
}

export function createPeerFilter(entries: readonly string[] = DEFAULT_DENY, allowLoopback = false): PeerFilter {
  const ranges = expand(entries).filter((r) => !(allowLoopback && DENY_GROUPS['loopback']!.includes(r)));
  const list = new BlockList();
  for (const range of ranges) addRange(list, range);
  return {
    ranges,
    // BlockList also matches IPv4-mapped IPv6 (::ffff:127.0.0.1) against IPv4 rules; the
    // other IPv4-embedding prefixes are checked here.
    denies: (address) => {
      const family = isIP(address);
      if (family === 0) return true;
      if (family === 4) return list.check(address, 'ipv4');
      if (list.check(address, 'ipv6')) return true;
      const embedded = embeddedIpv4(address);
      return embedded !== undefined && list.check(embedded, 'ipv4');
    },
  };
}

function expand(entries: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of entries) {
    if (entry === 'none') continue;
    const group = DENY_GROUPS[entry];
    out.push(...(group ?? [entry]));
  }
  return [...new Set(out)];
}

function addRange(list: BlockList, range: string): void {
  const [address, bits] = range.split('/');
  const family = isIP(address ?? '');
  const prefix = Number(bits ?? (family === 6 ? 128 : 32));
  const max = family === 6 ? 128 : 32;
  if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new PeerFilterError(range);
  list.addSubnet(address!, prefix, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The IPv4 address an IPv6 address carries where routers would deliver it over IPv4:
 * ::a.b.c.d (IPv4-compatible), ::ffff:a.b.c.d, ::ffff:0:a.b.c.d, 64:ff9b::a.b.c.d (NAT64,
 * RFC 6052 /96) and 2002:AABB:CCDD:: (6to4). Local-use NAT64 (64:ff9b:1::/48) and Teredo hide it
 * in operator-chosen or obfuscated places: they are only denied whole.
 */
export function embeddedIpv4(address: string): string | undefined {
  const b = ipBytes(address);
  if (!b || b.length !== 16) return undefined;
  const zeros = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  const v4 = (at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
  if (b.readUInt16BE(0) === 0x2002) return v4(2);
  if (zeros(0, 10) && ((b[10] === 0 && b[11] === 0) || (b[10] === 0xff && b[11] === 0xff))) return v4(12);
  if (zeros(0, 8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0) return v4(12);
  if (b.readUInt32BE(0) === 0x0064ff9b && zeros(4, 12)) return v4(12);
  return undefined;
}

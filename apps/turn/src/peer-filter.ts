/**
 * Which peer addresses the relay refuses (node-turn relays anywhere). The defaults follow
 * coturn's recommended denied-peer-ip list: an open relay toward loopback, private networks
 * or cloud metadata (169.254.169.254) would let any credential holder reach the operator's
 * internal services. TURN_DENY_PEERS replaces the list; it takes CIDRs and these group names.
 */
import { BlockList, isIP } from 'node:net';

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
    // BlockList also matches IPv4-mapped IPv6 (::ffff:127.0.0.1) against IPv4 rules.
    denies: (address) => {
      const family = isIP(address);
      if (family === 0) return true;
      return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
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

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

/**
 * Denied whatever TURN_DENY_PEERS says (`none` included): the kernel delivers a datagram sent to
 * 0.0.0.0 or :: to the sending host itself (Linux: to the relay socket's own address), so these
 * are the server's own address under another name, and no peer is ever reached there. Left to the
 * list, TURN_DENY_PEERS=loopback,private let a relay reach a service bound to 127.0.0.1
 * (apps/turn/test/unspecified-peer.test.ts), and the own-address port rule below never saw it.
 */
const ALWAYS_DENIED = DENY_GROUPS['unspecified']!;

export class PeerFilterError extends Error {
  constructor(readonly entry: string) {
    super(`not a CIDR range or group (${Object.keys(DENY_GROUPS).join(', ')}, none): ${entry}`);
  }
}

/**
 * The server's own addresses (listen IP, or every interface address for a wildcard listener;
 * relay IP). Relayed traffic toward them is limited to the relay port range, never
 * the listener's port, whatever TURN_DENY_PEERS and TURN_ALLOW_LOOPBACK_PEERS say: a relay
 * toward its own listener answers Bindings and would carry allocations made through relays (loops),
 * and other ports there are the host's own services. The relay range stays open: two relay-only
 * clients of this server reach each other relay to relay, so a permission toward these IPs (which
 * names no port) is granted, and the port is checked where one is named (ChannelBind, Send).
 * The external IP (TURN_EXTERNAL_IP) is only denied the listener's port: behind a home or office
 * NAT it is also the public (server-reflexive) address of the users behind that NAT.
 */
export interface SelfAddresses {
  /** the listen and relay interface addresses: only the relay port range is open there */
  addresses: readonly string[];
  /**
   * TURN_EXTERNAL_IP (when not also an interface address): a NAT's public address, which is also
   * the server-reflexive address of every user behind that NAT (their srflx candidates use random
   * NAT ports), so only the listener's port is denied there.
   */
  external?: readonly string[];
  /** the listener's UDP port (set once bound: TURN_PORT may be 0) */
  listenPort: number;
  minPort: number;
  maxPort: number;
}

export interface PeerFilter {
  /** whether no port of `address` may be relayed to (CreatePermission, and every datagram's check) */
  denies(address: string): boolean;
  /** whether `address` (a permitted one) is one of the server's own, whose ports deniesPort checks */
  readonly isSelf: (address: string) => boolean;
  /** whether `address`:`port` may not be relayed to: denies(address), or a port of ours outside the relay range */
  readonly deniesPort: (address: string, port: number) => boolean;
  /** the effective ranges, for the start-up log */
  readonly ranges: readonly string[];
}

export function createPeerFilter(entries: readonly string[] = DEFAULT_DENY, allowLoopback = false, self?: SelfAddresses): PeerFilter {
  const ranges = [...new Set([...expand(entries).filter((r) => !(allowLoopback && DENY_GROUPS['loopback']!.includes(r))), ...ALWAYS_DENIED])];
  const list = new BlockList();
  for (const range of ranges) addRange(list, range);
  const own = new BlockList();
  for (const address of self?.addresses ?? []) {
    const family = isIP(address);
    if (family !== 0) own.addAddress(address, family === 6 ? 'ipv6' : 'ipv4');
  }
  const external = new BlockList();
  for (const address of self?.external ?? []) {
    const family = isIP(address);
    if (family !== 0) external.addAddress(address, family === 6 ? 'ipv6' : 'ipv4');
  }
  const loopback = new BlockList();
  for (const range of DENY_GROUPS['loopback']!) addRange(loopback, range);
  const isInterface = (address: string) => self !== undefined && matches(own, address);
  const isExternal = (address: string) => self !== undefined && matches(external, address);
  const isSelf = (address: string) => isInterface(address) || isExternal(address);
  return {
    ranges,
    denies: (address) => matches(list, address),
    isSelf,
    deniesPort: (address, port) => {
      if (matches(list, address)) return true;
      if (!self || !isSelf(address)) return false;
      if (port === self.listenPort) return true;
      // the external (NAT) address: users behind the same NAT are reached there on any other port
      if (!isInterface(address)) return false;
      if (port >= self.minPort && port <= self.maxPort) return false;
      // with loopback peers allowed, every loopback port is open by that setting (one-host setups)
      return !(allowLoopback && matches(loopback, address));
    },
  };
}

/**
 * Whether the list holds the address, in any spelling. BlockList also matches IPv4-mapped IPv6
 * (::ffff:127.0.0.1) against IPv4 rules; the other IPv4-embedding prefixes are checked here.
 * Anything that is not an IP address is matched (refused).
 */
function matches(list: BlockList, address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 4) return list.check(address, 'ipv4');
  if (list.check(address, 'ipv6')) return true;
  const embedded = embeddedIpv4(address);
  return embedded !== undefined && list.check(embedded, 'ipv4');
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

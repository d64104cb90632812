/**
 * IP address forms the relay compares: the canonical text Node gives in `rinfo.address`
 * (inet_ntop: `2001:db8::1`, never node-turn's expanded `2001:db8:0:0:0:0:0:1`), the raw
 * bytes STUN address attributes carry, and the IPv4 address some IPv6 prefixes embed.
 */
import { SocketAddress, isIP } from 'node:net';

/** The address as Node prints it, or undefined when it is not an IP address. */
export function canonicalIp(address: string): string | undefined {
  const family = isIP(address);
  if (family === 4) return address;
  if (family !== 6) return undefined;
  return new SocketAddress({ address, family: 'ipv6' }).address;
}

/** 4 or 16 bytes, or undefined when it is not an IP address. */
export function ipBytes(address: string): Buffer | undefined {
  const family = isIP(address);
  if (family === 4) return Buffer.from(address.split('.').map(Number));
  if (family !== 6) return undefined;
  const [head, tail] = address.split('%')[0]!.split('::') as [string, string | undefined];
  const groups = (part: string | undefined): number[] =>
    part ? part.split(':').flatMap((g) => (g.includes('.') ? dottedGroups(g) : [parseInt(g, 16)])) : [];
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

function dottedGroups(v4: string): number[] {
  const o = v4.split('.').map(Number) as [number, number, number, number];
  return [(o[0] << 8) | o[1], (o[2] << 8) | o[3]];
}

/** Text of 4 or 16 address bytes, canonical. */
export function ipText(bytes: Buffer): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return canonicalIp(groups.join(':'))!;
}

/** An IPv4 address as an unsigned 32-bit number (the key STUN's XOR-PEER-ADDRESS decodes to). */
export function ipv4Number(bytes: Buffer): number {
  return bytes.readUInt32BE(0);
}

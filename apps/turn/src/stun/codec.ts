/**
 * The few STUN/TURN wire facts the control plane needs, read from raw datagrams (RFC 5389, RFC 5766).
 * Pure: no sockets, timers or logs.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const MAGIC_COOKIE = 0x2112a442;
export const ATTR = {
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  LIFETIME: 0x000d,
  REQUESTED_ADDRESS_FAMILY: 0x0017,
  EVEN_PORT: 0x0018,
  RESERVATION_TOKEN: 0x0022,
  FINGERPRINT: 0x8028,
} as const;

/** Attribute types node-turn parses itself, plus those our fixes add. */
export const UNDERSTOOD_ATTRIBUTES: ReadonlySet<number> = new Set([
  0x0001, 0x0006, 0x0008, 0x0009, 0x000a, 0x000c, 0x000d, 0x0012, 0x0013, 0x0014, 0x0015, 0x0016, 0x0017,
  0x0018, 0x0019, 0x001a, 0x0020, 0x0022, 0x8022, 0x8023, 0x8028,
]);

/** Types below 0x8000 must be understood or the request refused with 420 (RFC 5389 section 15). */
export function isComprehensionRequired(type: number): boolean {
  return type < 0x8000;
}

export interface RawAttribute {
  type: number;
  /** offset of the attribute header in the datagram */
  offset: number;
  value: Buffer;
}

/** The attributes of a STUN message, or undefined when it is not one (or is truncated). */
export function readAttributes(datagram: Buffer): RawAttribute[] | undefined {
  if (datagram.length < 20 || (datagram[0]! & 0xc0) !== 0 || datagram.readUInt32BE(4) !== MAGIC_COOKIE) return undefined;
  const end = 20 + datagram.readUInt16BE(2);
  if (end > datagram.length) return undefined;
  const out: RawAttribute[] = [];
  let offset = 20;
  while (offset + 4 <= end) {
    const type = datagram.readUInt16BE(offset);
    const length = datagram.readUInt16BE(offset + 2);
    if (offset + 4 + length > end) return undefined;
    out.push({ type, offset, value: datagram.subarray(offset + 4, offset + 4 + length) });
    offset += 4 + length + ((4 - (length % 4)) % 4);
  }
  return out;
}

export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`).digest();
}

/** Whether the MESSAGE-INTEGRITY attribute `mi` of `datagram` was made with `key`. */
export function integrityMatches(datagram: Buffer, mi: RawAttribute, key: Buffer): boolean {
  if (mi.value.length !== 20) return false;
  // The HMAC covers the message up to MESSAGE-INTEGRITY, with the length field counting it.
  const input = Buffer.from(datagram.subarray(0, mi.offset));
  input.writeUInt16BE(mi.offset - 20 + 24, 2);
  const expected = createHmac('sha1', key).update(input).digest();
  return timingSafeEqual(expected, mi.value);
}

/**
 * Whether a STUN message's datagram holds what no MESSAGE-INTEGRITY covers yet node-turn would
 * read (node_modules/node-turn/lib/message.js walks the whole datagram): bytes past the message's
 * declared length, or an attribute after MESSAGE-INTEGRITY other than a last FINGERPRINT (RFC 5389
 * section 15.4: those are ignored). A client never sends either; someone sending from its address
 * (on the path, or spoofing it) could add them to one of its signed requests: a LIFETIME 0 to a
 * Refresh, a peer to a CreatePermission (apps/turn/test/integrity-tail.test.ts).
 */
export function hasUnsignedTail(datagram: Buffer): boolean {
  if (datagram.length < 20 || (datagram[0]! & 0xc0) !== 0) return false;
  if (datagram.length > 20 + datagram.readUInt16BE(2)) return true;
  const attributes = readAttributes(datagram);
  const mi = attributes?.findIndex((a) => a.type === ATTR.MESSAGE_INTEGRITY) ?? -1;
  if (mi < 0) return false;
  const after = attributes!.length - mi - 1;
  return after > 1 || (after === 1 && attributes![mi + 1]!.type !== ATTR.FINGERPRINT);
}

/**
 * The relayed-data messages of RFC 5766 read and written in place: Send indications from
 * clients (XOR-PEER-ADDRESS and DATA found by walking the attributes, results written into a
 * caller-owned object), the ChannelData header, and the header of a Data indication toward the
 * client. No per-message objects or strings; pure (no sockets, timers or logs).
 */
import { MAGIC_COOKIE, UNDERSTOOD_ATTRIBUTES, isComprehensionRequired } from './codec.js';

const XOR_PEER_ADDRESS = 0x0012;
const DATA = 0x0013;
/** message type of a Send indication: method 0x006, class indication */
const SEND_INDICATION = 0x0016;
/** message type of a Data indication: method 0x007, class indication */
const DATA_INDICATION = 0x0017;
const FAMILY_IPV4 = 1;
const FAMILY_IPV6 = 2;

/** ChannelData starts with a channel number 0x4000-0x7FFF: first two bits 01. */
export function isChannelDataStart(firstByte: number): boolean {
  return (firstByte & 0xc0) === 0x40;
}

/** A Send indication by its first two bytes (the rest is checked by readSendIndication). */
export function isSendIndicationStart(datagram: Buffer): boolean {
  return datagram.length >= 20 && datagram[0] === 0x00 && datagram[1] === SEND_INDICATION;
}

/** Filled by readSendIndication; reuse one instance. */
export class SendIndication {
  /** 1 IPv4, 2 IPv6 */
  family = 0;
  port = 0;
  /** IPv4 peer as an unsigned 32-bit number (family 1) */
  ipv4 = 0;
  /** offset of the (XORed) IPv6 address bytes in the datagram (family 2) */
  ipv6Offset = 0;
  dataOffset = 0;
  dataLength = 0;
}

/**
 * Read a Send indication into `out`. False when it is not a well-formed one: wrong cookie or
 * length, a truncated attribute, no XOR-PEER-ADDRESS or DATA, or a comprehension-required
 * attribute we do not understand (RFC 5389 section 7.3.2: such indications are discarded).
 */
export function readSendIndication(datagram: Buffer, out: SendIndication): boolean {
  if (!isSendIndicationStart(datagram) || datagram.readUInt32BE(4) !== MAGIC_COOKIE) return false;
  const end = 20 + datagram.readUInt16BE(2);
  if (end > datagram.length) return false;
  out.family = 0;
  out.dataLength = -1;
  let offset = 20;
  while (offset + 4 <= end) {
    const type = datagram.readUInt16BE(offset);
    const length = datagram.readUInt16BE(offset + 2);
    const value = offset + 4;
    if (value + length > end) return false;
    if (type === XOR_PEER_ADDRESS && out.family === 0) {
      if (!readXorPeer(datagram, value, length, out)) return false;
    } else if (type === DATA && out.dataLength < 0) {
      out.dataOffset = value;
      out.dataLength = length;
    } else if (isComprehensionRequired(type) && !UNDERSTOOD_ATTRIBUTES.has(type)) {
      return false;
    }
    offset = value + length + ((4 - (length & 3)) & 3);
  }
  return out.family !== 0 && out.dataLength >= 0;
}

function readXorPeer(datagram: Buffer, value: number, length: number, out: SendIndication): boolean {
  const family = datagram[value + 1];
  out.port = datagram.readUInt16BE(value + 2) ^ (MAGIC_COOKIE >>> 16);
  if (family === FAMILY_IPV4 && length === 8) {
    out.ipv4 = (datagram.readUInt32BE(value + 4) ^ MAGIC_COOKIE) >>> 0;
  } else if (family === FAMILY_IPV6 && length === 20) {
    out.ipv6Offset = value + 4;
  } else {
    return false;
  }
  out.family = family;
  return true;
}

/** The IPv6 peer of a Send indication read by readSendIndication, un-XORed (key: cookie and transaction ID). */
export function sendIndicationIpv6(datagram: Buffer, at: number): Buffer {
  const ip = Buffer.allocUnsafe(16);
  for (let i = 0; i < 16; i++) ip[i] = datagram[at + i]! ^ datagram[4 + i]!;
  return ip;
}

/** The 4-byte ChannelData header (RFC 5766 section 11.4); over UDP the padding is optional and omitted. */
export function writeChannelDataHeader(target: Buffer, channel: number, length: number): void {
  target.writeUInt16BE(channel, 0);
  target.writeUInt16BE(length, 2);
}

/**
 * Write the Data indication prefix into `target` (36 bytes for an IPv4 peer, 48 for IPv6) for a peer
 * given as 4 or 16 address bytes. `transactionId` (12 bytes) is copied in. The payload and
 * its padding follow in the same send.
 */
export function writeDataIndicationPrefix(
  target: Buffer,
  transactionId: Buffer,
  peerIp: Buffer,
  peerPort: number,
  dataLength: number,
): void {
  const v6 = peerIp.length === 16;
  const addressLength = v6 ? 20 : 8;
  const padding = (4 - (dataLength & 3)) & 3;
  target.writeUInt16BE(DATA_INDICATION, 0);
  target.writeUInt16BE(4 + addressLength + 4 + dataLength + padding, 2);
  target.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(target, 8, 0, 12);
  target.writeUInt16BE(XOR_PEER_ADDRESS, 20);
  target.writeUInt16BE(addressLength, 22);
  target[24] = 0;
  target[25] = v6 ? FAMILY_IPV6 : FAMILY_IPV4;
  target.writeUInt16BE(peerPort ^ (MAGIC_COOKIE >>> 16), 26);
  // the XOR key: cookie, then (IPv6 only) the transaction ID, i.e. bytes 4.. of the header
  for (let i = 0; i < peerIp.length; i++) target[28 + i] = peerIp[i]! ^ target[4 + i]!;
  const data = 28 + peerIp.length;
  target.writeUInt16BE(DATA, data);
  target.writeUInt16BE(dataLength, data + 2);
}

/** Zero bytes for padding a DATA attribute to a multiple of 4. */
export const PADDING: readonly Buffer[] = [Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(2), Buffer.alloc(3)];

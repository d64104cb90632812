/**
 * Fix: node-turn's attribute parser throws on any attribute it does not know (coturn's
 * REQUESTED-ADDRESS-FAMILY, browsers' comprehension-optional extras), on EVEN-PORT (it calls
 * a bit reader the buffer lacks) and on RESERVATION-TOKEN (a 64-bit read Node refuses). A throw
 * silently drops the whole request. The wrapped reader parses those itself and keeps unknown
 * attributes as raw bytes; the message handler then answers 420 where RFC 5389 requires it.
 */
import { Attribute, type NtAttribute } from '../node-turn.js';
import { ATTR, UNDERSTOOD_ATTRIBUTES } from '../stun/codec.js';

const INSTALLED = Symbol.for('sync-suite.node-turn.attribute-read');
const HANDLED_BY_NODE_TURN = new Set([...UNDERSTOOD_ATTRIBUTES].filter(
  (t) => t !== ATTR.EVEN_PORT && t !== ATTR.RESERVATION_TOKEN && t !== ATTR.REQUESTED_ADDRESS_FAMILY,
));

/** Idempotent: node-turn is loaded once per process, so is the wrapper. */
export function installAttributeFixes(): void {
  const proto = Attribute.prototype as NtAttribute & { [INSTALLED]?: true };
  if (proto[INSTALLED]) return;
  const original = proto.read;
  proto.read = function read(this: NtAttribute, data: Buffer): void {
    const type = data.readUInt16BE(0);
    if (HANDLED_BY_NODE_TURN.has(type)) return original.call(this, data);
    const length = data.readUInt16BE(2);
    this.type = type;
    this.length = length;
    this.padding = (4 - (length % 4)) % 4;
    const raw = data.subarray(4, 4 + length);
    this.value = decodeValue(type, raw);
    this.name = NAMES[type] ?? 'unknown';
  };
  proto[INSTALLED] = true;
}

const NAMES: Record<number, string> = {
  [ATTR.EVEN_PORT]: 'even-port',
  [ATTR.RESERVATION_TOKEN]: 'reservation-token',
  [ATTR.REQUESTED_ADDRESS_FAMILY]: 'requested-address-family',
};

function decodeValue(type: number, raw: Buffer): unknown {
  switch (type) {
    case ATTR.EVEN_PORT:
      // the R bit: reserve the next port too
      return raw.length > 0 && (raw[0]! & 0x80) !== 0;
    case ATTR.RESERVATION_TOKEN:
      // node-turn writes tokens as 8 latin1 characters; read them back the same way
      return raw.toString('latin1');
    case ATTR.REQUESTED_ADDRESS_FAMILY:
      return raw.length > 0 ? raw[0] : undefined;
    default:
      return Buffer.from(raw);
  }
}

/** The first attribute of `type` in a parsed message, whatever node-turn calls it. */
export function attributeOfType(attributes: readonly NtAttribute[], type: number): NtAttribute | undefined {
  return attributes.find((a) => a.type === type);
}

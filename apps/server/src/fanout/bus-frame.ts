/**
 * The framing of every message between instances over Redis pub/sub. Pure: no I/O.
 *   frame := version(u8 = 1) • kind(u8) • instance(16 bytes) • payload(rest)
 * `instance` is the sender's id, so an instance skips what it published itself.
 */
export const BUS_VERSION = 1;
export const INSTANCE_ID_BYTES = 16;
/** bytes of a frame before its payload */
export const BUS_HEADER_BYTES = 2 + INSTANCE_ID_BYTES;
const HEADER = BUS_HEADER_BYTES;
/** the generation before a RelayUpdateAt's relay message, and before a SealedAt's kind */
export const GENERATION_BYTES = 8;

export const BusKind = {
  /** signaling: a publish frame, delivered as is */
  SignalPublish: 1,
  /** signaling: the sender's subscriber count for the topic (payload u32 big-endian) */
  SignalCount: 2,
  /** signaling: a new instance on the topic asks the others for their counts */
  SignalHello: 3,
  /**
   * relay: a y-websocket update frame, committed to storage before it was sent, in the room's
   * generation 0 (relay/persistence/types.ts); from an instance of the version before
   * RelayUpdateAt, in a generation not told
   */
  RelayUpdate: 10,
  /** relay: a y-websocket awareness frame */
  RelayAwareness: 11,
  /** relay: an instance that just loaded the room asks for the awareness states */
  RelayAwarenessQuery: 12,
  /** relay: the sender could not publish some committed updates (Redis down, or over REDIS_MAX_RELAY_MESSAGE_BYTES); re-read the room from storage */
  RelayReload: 13,
  /** relay: RelayUpdate committed in a generation above 0: payload := generation(u64 big-endian) • y-websocket update frame */
  RelayUpdateAt: 14,
  /**
   * sealed: a sealed message (entries, check) naming the room's generation it was committed in:
   * payload := generation(u64 big-endian) • kind(u8: SealedEntries or SealedCheck) • that kind's
   * payload. Read on sealed channels only: 13 is RelayReload on a relay channel. A number every
   * version with sealed rooms reads as a frame and, on a sealed channel, drops without a word
   * (sealed/redis-fanout.ts), where an unknown kind is dropped with a warning for each frame: the
   * version before this one skips these quietly during a rolling upgrade (docs/scaling.md, "Generations").
   */
  SealedAt: 13,
  /** sealed: committed entries with their seq (sealed/bus-payload.ts), in a generation not told (the version before SealedAt) */
  SealedEntries: 20,
  /** sealed: one connection's presence envelope */
  SealedPresence: 21,
  /** sealed: a connection closed */
  SealedPeerLeft: 22,
  /** sealed: an instance that just loaded the room asks for the presence of the others' connections */
  SealedPresenceQuery: 23,
  /** sealed: the sender could not publish some committed entries; read the room's tail from storage (a generation not told, as SealedEntries) */
  SealedCheck: 24,
  /** admin: an operation (JSON AdminOp with a request id) every instance carries out */
  AdminRequest: 30,
  /** admin: an instance's answer to an AdminRequest (JSON: request id, sockets closed) */
  AdminReply: 31,
} as const;
export type BusKind = (typeof BusKind)[keyof typeof BusKind];

const KINDS = new Set<number>(Object.values(BusKind));

export interface BusFrame {
  kind: BusKind;
  instance: Buffer;
  payload: Buffer;
}

export type BusFrameRead = { ok: true; frame: BusFrame } | { ok: false; reason: 'short' | 'version' | 'kind' };

export function writeBusFrame(kind: BusKind, instance: Buffer, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.byteLength);
  out[0] = BUS_VERSION;
  out[1] = kind;
  instance.copy(out, 2, 0, INSTANCE_ID_BYTES);
  out.set(payload, HEADER);
  return out;
}

export function readBusFrame(bytes: Buffer): BusFrameRead {
  if (bytes.length < HEADER) return { ok: false, reason: 'short' };
  if (bytes[0] !== BUS_VERSION) return { ok: false, reason: 'version' };
  const kind = bytes[1] ?? 0;
  if (!KINDS.has(kind)) return { ok: false, reason: 'kind' };
  return {
    ok: true,
    frame: { kind: kind as BusKind, instance: bytes.subarray(2, HEADER), payload: bytes.subarray(HEADER) },
  };
}

export function writeCount(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(Math.min(n, 0xffffffff));
  return b;
}

/** A RelayUpdateAt or SealedAt payload: the generation, then `parts` (the relay message; the sealed kind and its payload), copied once. */
export function writeGenerationPayload(generation: number, ...parts: Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + p.byteLength, GENERATION_BYTES));
  out.writeBigUInt64BE(BigInt(generation));
  let at = GENERATION_BYTES;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** null when the payload has no generation a number holds exactly */
export function readGenerationPayload(payload: Buffer): { generation: number; message: Buffer } | null {
  if (payload.length < GENERATION_BYTES) return null;
  const generation = payload.readBigUInt64BE(0);
  if (generation > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { generation: Number(generation), message: payload.subarray(GENERATION_BYTES) };
}

/** null when the payload is not a count */
export function readCount(payload: Buffer): number | null {
  return payload.length === 4 ? payload.readUInt32BE(0) : null;
}

import { describe, expect, it } from 'vitest';
import type * as encoding from 'lib0/encoding';
import {
  encodeSealedMessage,
  readSealedClientMessage,
  readSealedServerMessage,
  writeSealedAck,
  writeSealedCaughtUp,
  writeSealedEntry,
  writeSealedHello,
  writeSealedPeerLeft,
  writeSealedPeerPresence,
  writeSealedPresence,
  writeSealedSnapshot,
  writeSealedSnapshotBad,
  writeSealedSnapshotRequest,
  writeSealedStoredSnapshot,
  writeSealedUpdate,
  writeSealedWelcome,
  SEALED_ENVELOPE_MIN_BYTES,
} from '../../src/protocol/sealed.js';

const b = (...bytes: number[]) => Uint8Array.from(bytes);
/** the smallest envelope a client can seal, starting with `first` */
const sealed = (first: number, length = SEALED_ENVELOPE_MIN_BYTES): Uint8Array => Uint8Array.from({ length }, (_, i) => (i === 0 ? first : 0xee));
const framed = (...head: number[]) => (envelope: Uint8Array) => Uint8Array.from([...head, envelope.length, ...envelope]);

describe('sealed codec, client -> server: byte fixtures', () => {
  const fixtures: Array<[string, Uint8Array, unknown, (e: encoding.Encoder) => void]> = [
    ['hello (a client before generations)', b(0, 0xac, 0x02), { type: 'hello', cursor: 300 }, (e) => writeSealedHello(e, 300)],
    ['hello with its generation', b(0, 0xac, 0x02, 0x85, 0x01), { type: 'hello', cursor: 300, generation: 133 }, (e) => writeSealedHello(e, 300, 133)],
    ['hello, generation unknown', b(0, 1, 0), { type: 'hello', cursor: 1, generation: 0 }, (e) => writeSealedHello(e, 1, 0)],
    ['update', framed(1, 7)(sealed(0xaa)), { type: 'update', id: 7, envelope: sealed(0xaa) }, (e) => writeSealedUpdate(e, 7, sealed(0xaa))],
    ['snapshot', framed(2, 5)(sealed(9, 60)), { type: 'snapshot', covers: 5, envelope: sealed(9, 60) }, (e) => writeSealedSnapshot(e, 5, sealed(9, 60))],
    ['presence', framed(3)(sealed(4)), { type: 'presence', envelope: sealed(4) }, (e) => writeSealedPresence(e, sealed(4))],
    ['snapshot-bad', b(4, 0xac, 0x02), { type: 'snapshot-bad', covers: 300 }, (e) => writeSealedSnapshotBad(e, 300)],
  ];
  it.each(fixtures)('reads and writes %s', (_name, bytes, expected, write) => {
    expect(readSealedClientMessage(bytes)).toEqual({ ok: true, message: expected });
    expect(encodeSealedMessage(write)).toEqual(bytes);
  });

  it.each([
    ['empty frame', b(), 'empty'],
    ['type only', b(1), 'truncated'],
    ['envelope length beyond the frame', b(1, 7, 9, 0), 'truncated'],
    ['trailing bytes', b(0, 1, 0, 0), 'trailing_bytes'],
    ['a generation cut short', b(0, 1, 0x80), 'truncated'],
    ['a server type', b(16, 1, 1), 'unknown_type'],
    ['an unknown type', b(9), 'unknown_type'],
    ['an empty envelope', b(3, 0), 'empty_envelope'],
    ['a 1-byte update envelope', b(1, 7, 1, 0xaa), 'short_envelope'],
    ['an update envelope one byte short of the smallest sealed one', framed(1, 7)(sealed(1, SEALED_ENVELOPE_MIN_BYTES - 1)), 'short_envelope'],
    ['a short snapshot envelope', b(2, 5, 1, 9), 'short_envelope'],
    ['a short presence envelope', b(3, 1, 4), 'short_envelope'],
    ['snapshot-bad without covers', b(4), 'truncated'],
    ['snapshot-bad with trailing bytes', b(4, 1, 0), 'trailing_bytes'],
    ['varuint overflow', b(0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80), 'truncated'],
  ])('refuses %s with a typed error', (_name, bytes, error) => {
    const r = readSealedClientMessage(bytes);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.error).toBe(error);
  });
});

describe('sealed codec, server -> client: byte fixtures', () => {
  const fixtures: Array<[string, Uint8Array, unknown, (e: encoding.Encoder) => void]> = [
    ['welcome (writable)', b(16, 42, 1), { type: 'welcome', peer: 42, writable: true }, (e) => writeSealedWelcome(e, 42, true)],
    ['welcome (read only)', b(16, 42, 0), { type: 'welcome', peer: 42, writable: false }, (e) => writeSealedWelcome(e, 42, false)],
    ['welcome with the generation', b(16, 42, 1, 0x85, 0x01), { type: 'welcome', peer: 42, writable: true, generation: 133 }, (e) => writeSealedWelcome(e, 42, true, 133)],
    [
      'welcome with the generation and the size limit',
      b(16, 42, 1, 0x85, 0x01, 0xa0, 0x9c, 0x01),
      { type: 'welcome', peer: 42, writable: true, generation: 133, maxMessageBytes: 20_000 },
      (e) => writeSealedWelcome(e, 42, true, 133, 20_000),
    ],
    [
      'welcome from a server that takes snapshot-bad',
      b(16, 42, 3, 0x85, 0x01, 0xa0, 0x9c, 0x01),
      { type: 'welcome', peer: 42, writable: true, generation: 133, maxMessageBytes: 20_000, takesSnapshotBad: true },
      (e) => writeSealedWelcome(e, 42, true, 133, 20_000, true),
    ],
    ['welcome, read only, takes snapshot-bad', b(16, 42, 2), { type: 'welcome', peer: 42, writable: false, takesSnapshotBad: true }, (e) => writeSealedWelcome(e, 42, false, undefined, undefined, true)],
    ['snapshot', b(17, 3, 1, 1), { type: 'snapshot', covers: 3, envelope: b(1) }, (e) => writeSealedStoredSnapshot(e, 3, b(1))],
    ['entry', b(18, 4, 2, 1, 2), { type: 'entry', seq: 4, envelope: b(1, 2) }, (e) => writeSealedEntry(e, 4, b(1, 2))],
    ['caught-up', b(19, 4), { type: 'caught-up', seq: 4 }, (e) => writeSealedCaughtUp(e, 4)],
    ['ack', b(20, 7, 5), { type: 'ack', id: 7, seq: 5 }, (e) => writeSealedAck(e, 7, 5)],
    ['snapshot request', b(21, 0x80, 0x01), { type: 'snapshot-request', upTo: 128 }, (e) => writeSealedSnapshotRequest(e, 128)],
    ['presence', b(22, 42, 1, 8), { type: 'presence', peer: 42, envelope: b(8) }, (e) => writeSealedPeerPresence(e, 42, b(8))],
    ['peer left', b(23, 42), { type: 'peer-left', peer: 42 }, (e) => writeSealedPeerLeft(e, 42)],
  ];
  it.each(fixtures)('reads and writes %s', (_name, bytes, expected, write) => {
    expect(readSealedServerMessage(bytes)).toEqual({ ok: true, message: expected });
    expect(encodeSealedMessage(write)).toEqual(bytes);
  });

  it.each([
    ['empty frame', b(), 'empty'],
    ['a client type', b(0, 1), 'unknown_type'],
    ['truncated ack', b(20, 7), 'truncated'],
    ['trailing bytes', b(23, 1, 1), 'trailing_bytes'],
    ['welcome: bytes after the size limit', b(16, 42, 1, 7, 9, 9), 'trailing_bytes'],
    ['welcome: a size limit cut short', b(16, 42, 1, 7, 0x80), 'truncated'],
    ['welcome: a generation cut short', b(16, 42, 1, 0x80), 'truncated'],
    ['an empty entry envelope', b(18, 1, 0), 'empty_envelope'],
  ])('refuses %s with a typed error', (_name, bytes, error) => {
    const r = readSealedServerMessage(bytes);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.error).toBe(error);
  });

  it('refuses every number past 2^53 - 1, also those lib0 reads as Infinity (out_of_range), both ways', () => {
    const infinity = [...new Array<number>(146).fill(0x80), 0x7f];
    const twoTo53 = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
    const env = sealed(0xaa);
    for (const n of [infinity, twoTo53]) {
      for (const frame of [
        [0, ...n],
        [0, 1, ...n],
        [1, ...n, env.length, ...env],
        [2, ...n, env.length, ...env],
        [4, ...n],
      ]) {
        const r = readSealedClientMessage(Uint8Array.from(frame));
        expect(r.ok ? r.message : r.error.error, `client frame ${frame.slice(0, 2).join(',')}`).toBe('out_of_range');
      }
      for (const frame of [
        [16, 1, ...n],
        [18, ...n, 1, 1],
        [19, ...n],
        [20, 1, ...n],
        [21, ...n],
      ]) {
        const r = readSealedServerMessage(Uint8Array.from(frame));
        expect(r.ok ? r.message : r.error.error, `server frame ${frame.slice(0, 2).join(',')}`).toBe('out_of_range');
      }
    }
  });

  it('keeps sequence numbers up to 2^53 - 1 exact', () => {
    const bytes = encodeSealedMessage((e) => writeSealedEntry(e, Number.MAX_SAFE_INTEGER, b(1)));
    expect(readSealedServerMessage(bytes)).toEqual({ ok: true, message: { type: 'entry', seq: Number.MAX_SAFE_INTEGER, envelope: b(1) } });
  });
});

describe('sealed codec: hello and welcome generations, seeded round trips', () => {
  // mulberry32: a fixed seed, so a failure reproduces
  let seed = 0x5eed;
  const rand = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  /** 0, small, 48-bit (what servers draw), up to 2^53 - 1 */
  const num = (): number => [0, 1 + Math.floor(rand() * 1000), 1 + Math.floor(rand() * (2 ** 48 - 1)), Number.MAX_SAFE_INTEGER][Math.floor(rand() * 4)] as number;

  it('every hello and welcome reads back as written, with or without the generation (and the size limit); any cut is refused', () => {
    for (let i = 0; i < 2000; i++) {
      const cursor = num();
      const generation = rand() < 0.25 ? undefined : num();
      const hello = encodeSealedMessage((e) => writeSealedHello(e, cursor, generation));
      expect(readSealedClientMessage(hello)).toEqual({ ok: true, message: { type: 'hello', cursor, ...(generation === undefined ? {} : { generation }) } });
      const peer = num();
      const writable = rand() < 0.5;
      const max = rand() < 0.5 ? undefined : num();
      const welcome = encodeSealedMessage((e) => writeSealedWelcome(e, peer, writable, generation, max));
      const extra = generation === undefined ? {} : { generation, ...(max === undefined ? {} : { maxMessageBytes: max }) };
      expect(readSealedServerMessage(welcome)).toEqual({ ok: true, message: { type: 'welcome', peer, writable, ...extra } });
      // A frame cut inside a varUint is refused, never read as another message.
      const cut = 1 + Math.floor(rand() * (welcome.length - 1));
      const r = readSealedServerMessage(welcome.subarray(0, cut));
      if (r.ok) expect(r.message).toMatchObject({ type: 'welcome' });
      else expect(r.error.error).toBe('truncated');
    }
  });
});

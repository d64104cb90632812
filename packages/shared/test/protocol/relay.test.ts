import { describe, expect, it } from 'vitest';
import * as encoding from 'lib0/encoding';
import {
  encodeAwarenessEntries,
  isNullJson,
  encodeRelayMessage,
  readAwarenessUpdate,
  readRelayMessage,
  writeRelayAwareness,
  writeRelayPermissionDenied,
  writeRelayQueryAwareness,
  writeRelaySyncStep1,
  writeRelaySyncStep2,
  writeRelayUpdate,
} from '../../src/protocol/relay.js';

const b = (...bytes: number[]) => Uint8Array.from(bytes);

describe('relay codec: byte fixtures', () => {
  it.each([
    ['sync step 1', b(0, 0, 1, 0), { type: 'sync-step1', stateVector: b(0) }],
    ['sync step 2', b(0, 1, 2, 0, 0), { type: 'sync-step2', update: b(0, 0) }],
    ['update', b(0, 2, 2, 0, 0), { type: 'update', update: b(0, 0) }],
    ['awareness', b(1, 1, 0), { type: 'awareness', update: b(0) }],
    ['query awareness', b(3), { type: 'query-awareness' }],
    ['permission denied', b(2, 0, 2, 0x6e, 0x6f), { type: 'auth', authType: 0, reason: 'no' }],
    ['unknown type (skipped whole)', b(9, 1, 2, 3), { type: 'unknown', messageType: 9 }],
  ])('reads %s', (_name, bytes, expected) => {
    expect(readRelayMessage(bytes)).toEqual({ ok: true, message: expected });
  });

  it.each([
    ['empty frame', b(), 'empty'],
    ['type only', b(0), 'truncated'],
    ['length beyond the frame', b(0, 2, 9, 0), 'truncated'],
    ['trailing bytes', b(0, 2, 2, 0, 0, 7), 'trailing_bytes'],
    ['unknown sync type', b(0, 7, 0), 'unknown_sync_type'],
    ['varuint overflow', b(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80), 'truncated'],
  ])('refuses %s with a typed error', (_name, bytes, error) => {
    const r = readRelayMessage(bytes);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.error).toBe(error);
  });

  it('writes exactly what it reads', () => {
    const cases: Array<[(e: encoding.Encoder) => void, Uint8Array]> = [
      [(e) => writeRelaySyncStep1(e, b(0)), b(0, 0, 1, 0)],
      [(e) => writeRelaySyncStep2(e, b(0, 0)), b(0, 1, 2, 0, 0)],
      [(e) => writeRelayUpdate(e, b(0, 0)), b(0, 2, 2, 0, 0)],
      [(e) => writeRelayAwareness(e, b(0)), b(1, 1, 0)],
      [(e) => writeRelayQueryAwareness(e), b(3)],
      [(e) => writeRelayPermissionDenied(e, 'no'), b(2, 0, 2, 0x6e, 0x6f)],
    ];
    for (const [write, bytes] of cases) expect(encodeRelayMessage(write)).toEqual(bytes);
  });
});

describe('awareness updates', () => {
  it('reads entries and marks removals', () => {
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 2);
    encoding.writeVarUint(e, 11);
    encoding.writeVarUint(e, 3);
    encoding.writeVarString(e, '{"user":"a"}');
    encoding.writeVarUint(e, 12);
    encoding.writeVarUint(e, 4);
    encoding.writeVarString(e, 'null');
    expect(readAwarenessUpdate(encoding.toUint8Array(e))).toEqual({
      ok: true,
      entries: [
        { clientID: 11, clock: 3, json: '{"user":"a"}', removed: false },
        { clientID: 12, clock: 4, json: 'null', removed: true },
      ],
    });
  });

  it('writes entries as it reads them; a state given as bytes keeps them (the client passes states on unread)', () => {
    const entries = [
      { clientID: 11, clock: 3, json: '{"user":"é"}', removed: false },
      { clientID: 300, clock: 4, json: 'null', removed: true },
    ];
    const asText = encodeAwarenessEntries(entries);
    expect(readAwarenessUpdate(asText)).toEqual({ ok: true, entries });
    const utf8 = new TextEncoder();
    expect(encodeAwarenessEntries(entries.map((x) => ({ ...x, json: utf8.encode(x.json) })))).toEqual(asText);
    // not UTF-8: what was read is what is written
    expect(encodeAwarenessEntries([{ clientID: 1, clock: 1, json: b(0xff, 0xfe) }])).toEqual(b(1, 1, 1, 2, 0xff, 0xfe));
  });

  it.each([
    ['bad JSON', b(1, 1, 1, 1, 0x7b)],
    ['truncated', b(2, 1, 1, 4, 0x6e)],
    ['trailing bytes', b(0, 1)],
  ])('refuses %s', (_name, bytes) => {
    const r = readAwarenessUpdate(bytes);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.error).toBe('bad_awareness');
  });
});

describe('isNullJson', () => {
  const utf8 = (t: string) => new TextEncoder().encode(t);
  it('is null JSON text, with JSON whitespace around it, as JSON.parse reads it', () => {
    for (const t of ['null', ' null', 'null\n', '\t\r null \n']) expect([t, isNullJson(utf8(t))]).toEqual([t, true]);
    for (const t of ['', 'nul', 'nulll', '"null"', '{}', 'Null', 'null x', '\u00a0null']) expect([t, isNullJson(utf8(t))]).toEqual([t, false]);
  });
});

import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { writeSyncStep1, writeSyncStep2, writeUpdate } from 'y-protocols/sync';
import { describe, expect, it } from 'vitest';
import { isSyncStep2 } from '../src/sync-step.js';

/** A y-webrtc data-channel message: message type 0 (sync), then the sync message. */
function syncMessage(write: (e: encoding.Encoder, doc: Y.Doc) => void): Uint8Array {
  const doc = new Y.Doc();
  doc.getText('t').insert(0, 'hi');
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 0);
  write(e, doc);
  return encoding.toUint8Array(e);
}

describe('isSyncStep2', () => {
  it('recognises sync step 2', () => {
    expect(isSyncStep2(syncMessage((e, doc) => writeSyncStep2(e, doc)))).toBe(true);
  });
  it.each([
    ['sync step 1', syncMessage((e, doc) => writeSyncStep1(e, doc))],
    ['an update', syncMessage((e, doc) => writeUpdate(e, Y.encodeStateAsUpdate(doc)))],
    ['awareness (type 1)', Uint8Array.of(1, 1, 0)],
    ['empty', new Uint8Array()],
    ['a truncated varint', Uint8Array.of(0x80)],
  ])('rejects %s', (_, data) => {
    expect(isSyncStep2(data)).toBe(false);
  });
});

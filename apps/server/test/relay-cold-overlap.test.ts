/**
 * A cold load (persistence/stored-bytes.ts) serves what the room's document holds when a writer
 * stored two updates of one client starting at the same clock, the second longer: Yjs keeps the
 * first and takes only the clocks past it from the second. The byte merge kept the longer whole,
 * so a client that synced before the document was built saw other text than the room and every
 * other member, under the same ids: never reconciled.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { serverPerTest } from '../../../test/helpers/server.js';
import { connectRawClient } from '../../../test/fixtures/relay-clients.js';

const ROOM = 'acme-conversation-cold-overlap';
const scope = serverPerTest();
afterEach(() => scope.close());

const updateFrame = (u: Uint8Array): Uint8Array => encodeRelayMessage((e) => writeRelayUpdate(e, u));

/** `text` inserted into an empty text by client 5: every such update starts at clock 0. */
function insertByClient5(text: string): Uint8Array {
  const d = new Y.Doc();
  d.clientID = 5;
  d.getText('text').insert(0, text);
  return Y.encodeStateAsUpdate(d);
}

describe('cold load: updates of one client that overlap', () => {
  it('serves what the document holds', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'relay-cold-overlap-'));
    try {
      const env = { STORAGE: 'sqlite', DATA_DIR: dataDir };
      const first = await scope.start(env);
      const writer = await connectRawClient(scope, `/relay/${ROOM}`);
      writer.send(updateFrame(insertByClient5('aaa')));
      writer.send(updateFrame(insertByClient5('bbbbb')));
      await writer.handled();
      expect(first.app.relayRooms.rooms.get(ROOM)?.doc.getText('text').toString()).toBe('aaabb');
      await scope.close(); // both stored, no compaction (COMPACT_AFTER_UPDATES: 500)

      const second = await scope.start(env);
      const reader = await connectRawClient(scope, `/relay/${ROOM}`);
      const served = new Y.Doc();
      Y.applyUpdate(served, await reader.handled());
      const room = second.app.relayRooms.rooms.get(ROOM);
      room?.warm();
      expect(room?.doc.getText('text').toString()).toBe('aaabb');
      expect(served.getText('text').toString()).toBe('aaabb');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/**
 * An update message from another instance merges the updates of one commit, each checked there
 * (relay/room.ts remoteMessageLimits). The pending limits used to count the merge's own bytes:
 * a writer on B sending a few bytes with a gap in their clocks (waiting, within the limits) in
 * the same commit as a 70 KB update (nothing waiting) got each commit refused on A, which then
 * read the whole room from storage: one writer kept every other instance re-reading the room.
 * Two instances on PostgreSQL and Redis (two-instances.ts).
 */
import * as Y from 'yjs';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { docUntil, RawClient, stockClient, synced } from '../../../test/fixtures/relay-clients.js';
import { schemaForThisFile } from './postgres-helpers.js';
import { withCluster } from './two-instances.js';

const ADMIN_TOKEN = 'admin-token-for-the-relay-remote-pending-tests';
const schema = schemaForThisFile('rrpend');
const cleanup: Array<() => unknown> = [];
async function runCleanup(): Promise<void> {
  for (const f of cleanup.splice(0).reverse()) await f();
}
afterEach(runCleanup);

const frame = (u: Uint8Array): Uint8Array => encodeRelayMessage((e) => writeRelayUpdate(e, u));

/** An update of client `client` at clock 1: it waits for clock 0, which never comes. */
function gapUpdate(client: number): Uint8Array {
  const g = new Y.Doc();
  g.clientID = client;
  g.getText('t').insert(0, 'a');
  const first = Y.encodeStateVector(g);
  g.getText('t').insert(1, 'b');
  const gap = Y.encodeStateAsUpdate(g, first);
  g.destroy();
  return gap;
}

describe('relay across instances: a commit holding an update that waits', () => {
  it('is applied by the other instance without reading the room from storage', async () => {
    await withCluster({ schema, adminToken: ADMIN_TOKEN, env: { ROOM_IDLE_MS: '60000' }, beforeClose: runCleanup }, async ({ a, b, token }) => {
      const ROOM = 'acme-conversation-remote-pending';
      const watcher = stockClient(3, a.wsUrl, ROOM, { token });
      cleanup.push(() => watcher.destroy());
      await synced(watcher.p);
      const store = a.app.relayRooms.store;
      const load = store.load.bind(store);
      let reads = 0;
      store.load = (room: string) => {
        reads++;
        return load(room);
      };
      const writer = await RawClient.connect(`${b.wsUrl}/relay/${ROOM}?token=${token}`);
      cleanup.push(() => writer.close());
      await writer.handled();
      const doc = new Y.Doc();
      doc.clientID = 777;
      for (let i = 0; i < 3; i++) {
        const before = Y.encodeStateVector(doc);
        doc.getText('t').insert(0, `${i}`.padEnd(70_000, '.'));
        // One frame after the other, in one turn: one commit on B.
        writer.send(frame(Y.encodeStateAsUpdate(doc, before)));
        writer.send(frame(gapUpdate(100_000 + i)));
        await writer.handled();
      }
      await docUntil(watcher.doc, () => watcher.doc.getText('t').length >= 3 * 70_000, 10_000, 'the three inserts on A');
      expect(writer.closeCode).toBeNull();
      expect(reads).toBe(0);
      expect((await a.app.sync.metrics.quarantinedUpdates.get()).values.filter((v) => v.labels['source'] === 'remote').reduce((n, v) => n + v.value, 0)).toBe(0);
    });
  });
});

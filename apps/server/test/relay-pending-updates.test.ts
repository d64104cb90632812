/**
 * Updates the room cannot apply yet (they wait for structs it lacks: Yjs keeps them pending) are
 * stored and forwarded like any other, the second and later ones too. Yjs merges a pending update
 * into the pending structs it already holds in place (yjs/src/utils/encoding.js readUpdateV2), so
 * a check of "did the pending structs change" by identity saw nothing new in them: such an update
 * was neither committed nor sent to the room's other connections, though the room's document (and
 * every step 2 it answered) held it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { serverPerTest } from '../../../test/helpers/server.js';
import { connectRawClient } from '../../../test/fixtures/relay-clients.js';
import { mergeStoredRoom } from '../src/relay/persistence/merge.js';
import { captureUpdate } from '../../../test/helpers/capture-update.js';

const ROOM = 'acme-conversation-pending';
const scope = serverPerTest();
afterEach(() => scope.close());

const updateFrame = (u: Uint8Array): Uint8Array => encodeRelayMessage((e) => writeRelayUpdate(e, u));

describe('relay: updates that wait for structs the room lacks', () => {
  it('are stored and forwarded, every one of them', async () => {
    const server = await scope.start();
    const registry = server.app.relayRooms;
    // A's edit reaches B another way (a WebRTC peer, a restored backup) before it reaches the relay.
    const a = new Y.Doc();
    a.clientID = 1;
    a.getText('text').insert(0, 'a');
    const fromA = Y.encodeStateAsUpdate(a);
    const b = new Y.Doc();
    b.clientID = 2;
    Y.applyUpdate(b, fromA);
    const b1 = captureUpdate(b, () => b.getText('text').insert(1, 'b1'));
    const b2 = captureUpdate(b, () => b.getText('text').insert(3, 'b2'));
    const b3 = captureUpdate(b, () => b.getText('text').insert(5, 'b3'));

    const observer = await connectRawClient(scope, `/relay/${ROOM}`);
    const writerB = await connectRawClient(scope, `/relay/${ROOM}`);
    await observer.handled();
    await writerB.handled();
    for (const u of [b1, b2, b3, b2]) writerB.send(updateFrame(u)); // the repeat brings nothing new
    await writerB.handled();
    // Then A's edit arrives: everything waiting applies.
    const writerA = await connectRawClient(scope, `/relay/${ROOM}`);
    writerA.send(updateFrame(fromA));
    await writerA.handled();
    expect(registry.rooms.get(ROOM)?.doc.getText('text').toString()).toBe('ab1b2b3');

    // Storage holds all of it: a restart (no compaction from memory) loses nothing.
    await registry.persist.flush();
    const stored = mergeStoredRoom(await registry.store.load(ROOM));
    const reloaded = new Y.Doc();
    Y.applyUpdate(reloaded, stored);
    expect(reloaded.getText('text').toString()).toBe('ab1b2b3');

    // The observer got every update as it came, as stock clients do (no step 1 of its own).
    const seen = new Y.Doc();
    const applyForwarded = (): void => {
      for (const m of observer.messages) if (m.type === 'update') Y.applyUpdate(seen, m.update);
    };
    // Every forwarded update has arrived once the observer's own step 1 is answered (frames go out in order).
    await observer.handled();
    applyForwarded();
    expect(seen.getText('text').toString()).toBe('ab1b2b3');
    expect(observer.messages.filter((m) => m.type === 'update')).toHaveLength(4);
  });

  it('a duplicate is still dropped while a deletion waits', async () => {
    const server = await scope.start();
    const registry = server.app.relayRooms;
    // A deletion of a struct the room does not have: Yjs keeps it pending and re-reads it on
    // every later update, making its pending deletions a new array each time.
    const e = new Y.Doc();
    e.clientID = 99;
    e.getText('text').insert(0, 'x');
    const waitingDelete = captureUpdate(e, () => e.getText('text').delete(0, 1));
    const w = new Y.Doc();
    w.clientID = 3;
    const u = captureUpdate(w, () => w.getText('text').insert(0, 'once'));

    const observer = await connectRawClient(scope, `/relay/${ROOM}`);
    const writer = await connectRawClient(scope, `/relay/${ROOM}`);
    await observer.handled();
    writer.send(updateFrame(waitingDelete));
    writer.send(updateFrame(u));
    writer.send(updateFrame(u));
    writer.send(updateFrame(u));
    await writer.handled();
    await observer.handled();
    expect(registry.rooms.get(ROOM)?.doc.store.pendingDs).not.toBeNull();
    const forwarded = observer.messages.filter((m) => m.type === 'update');
    expect(forwarded).toHaveLength(2); // the deletion and the update, once
    await registry.persist.flush();
    expect((await registry.store.load(ROOM)).updates).toHaveLength(2);
  });
});

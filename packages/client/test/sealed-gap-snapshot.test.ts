/**
 * One update with a clock gap, sent by any key-holding member (hostile, or a device whose store
 * lost an entry), leaves that update waiting on every device that reads it (Yjs pendingStructs).
 * A device whose own document was whole when it connected, or that read the room from 0 in this
 * session, still answers snapshot requests (sealed/transport.ts sendSnapshot): the snapshot
 * carries the waiting update as it is. Before, every device refused them for its whole session,
 * so the room's log was never compacted while they stayed online.
 */
import { createRequire } from 'node:module';
import { afterEach, expect, it } from 'vitest';
import type { WebSocket as WsSocket } from 'ws';
import * as Y from 'yjs';
import { readSealedClientMessage } from '@sync-suite/shared';
import { serverPerTest, testToken, TEST_SECRET } from '../../../test/helpers/server.js';
import { freePort } from '../../../test/helpers/process.js';
import { SyncProvider } from '../src/sync-provider.js';
import { texts, when } from './helpers/store-device.js';

const scope = serverPerTest();
afterEach(() => scope.close());
const KEY = new Uint8Array(32).fill(9);
const Ws = createRequire(import.meta.url)('ws') as typeof WsSocket;

let snapshotsSent = 0;
/** The socket of the devices here, counting the snapshots they send. */
class CountingSocket extends Ws {
  override send(data: Uint8Array, ...rest: unknown[]): void {
    const m = readSealedClientMessage(data);
    if (m.ok && m.message.type === 'snapshot') snapshotsSent++;
    (super.send as (...a: unknown[]) => void)(data, ...rest);
  }
}

async function device(url: string, room: string, doc: Y.Doc, sub: string) {
  const provider = new SyncProvider(doc, {
    serverUrl: url,
    room,
    getToken: () => testToken(sub, ['test-*']),
    signalingUrl: `ws://127.0.0.1:${await freePort()}/signal`,
    relayGraceMs: 0,
    WebSocket: CountingSocket as never,
    sealed: { key: KEY, mergeMs: 5 },
  });
  scope.track(provider);
  let pending = -1;
  provider.on('status', (e: { pending: number }) => (pending = e.pending));
  /** destroy, and wait until y-webrtc let go of the room (one provider per room in a process; its key derivation is async) */
  const stop = async (): Promise<void> => {
    const key = provider.webrtc?.provider.key;
    provider.destroy();
    await key;
  };
  return { provider, pending: () => pending, stop };
}

it('a gapped update from a member does not stop the other devices from compacting the room', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, SEALED_SNAPSHOT_AFTER: '7' });
  const room = 'test-conversation-gap-snapshot';
  // the member's update: client 4242 at clock 10, without clocks 0-9
  const source = new Y.Doc();
  source.clientID = 4242;
  const updates: Uint8Array[] = [];
  source.on('update', (u: Uint8Array) => updates.push(u));
  for (let i = 0; i < 11; i++) source.getArray<string>('m').push([`x${i}`]);
  const memberDoc = new Y.Doc();
  Y.applyUpdate(memberDoc, updates[10] as Uint8Array);
  memberDoc.getArray<string>('m').push(['from the member']);
  const member = await device(server.url, room, memberDoc, 'member');
  await when(() => member.provider.status === 'relay' && member.pending() === 0, 'the member uploaded');
  await member.stop();

  snapshotsSent = 0;
  const doc = new Y.Doc();
  const a = await device(server.url, room, doc, 'a');
  await when(() => texts(doc).includes('from the member'), 'a read the member');
  expect(doc.store.pendingStructs).not.toBeNull();
  for (let i = 0; i < 30 && snapshotsSent === 0; i++) {
    doc.getArray<string>('m').push([`a${i}`]);
    await when(() => a.pending() === 0, `a${i} acked`);
  }
  await when(() => snapshotsSent > 0, 'a snapshot from a');
  await a.stop();
  const fresh = new Y.Doc();
  await device(server.url, room, fresh, 'c');
  await when(() => texts(fresh).includes('from the member') && texts(fresh).includes('a0'), () => `c reads the room (has ${JSON.stringify(texts(fresh))})`);
});

/**
 * A sealed room deleted while a device was offline, then written again past that device's cursor:
 * when the device comes back (same persistence), it must not take the new log from its old cursor
 * (it would never get the new room's first entries, and its next snapshot would claim them, so
 * the server would compact them away with the old room's content in their place). It gets 4410
 * "room deleted" as a device connected during the delete did, keeps its copy, and the new room's
 * entries all stay, through a snapshot, for a fresh device. docs/PROTOCOL-sealed.md, "Generation".
 */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import { metric } from './helpers/metrics.js';
import type { PeerEvent, PeerProcess } from './helpers/peer-process.js';
import { tempDirPerTest } from './helpers/temp-dir.js';
import { until } from './helpers/until.js';

const tempDir = tempDirPerTest('client-sealed-generation-');
const { scope, peer } = devicesPerTest();
const ADMIN_TOKEN = 'admin-token-for-the-tests-0123456789';
const ROOM = 'test-conversation-sealed-generation';

const pendingIs = (n: number) => (e: PeerEvent) => e.ev === 'status' && e['pending'] === n;

/** One message per entry: each pushed alone and acked before the next. */
async function pushAcked(device: PeerProcess, texts: string[]): Promise<void> {
  for (const text of texts) {
    const since = device.mark;
    await device.send('push', { text });
    await device.waitFor(pendingIs(1), `${text} pending`, 5_000, since);
    await device.waitFor(pendingIs(0), `${text} acked`, 10_000, since);
  }
}

interface State {
  texts: string[];
  sockets: Array<{ path: string }>;
  sealedStats: { applied: number };
}

it('a device offline during a delete comes back after the recreated room passed its cursor: 4410, no entry of the new room, and the new room keeps every entry through a snapshot', async () => {
  // Snapshot requests from 6 stored entries: the new room reaches it while the stale device is back.
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN, PERSIST_FLUSH_MS: '10', SEALED_SNAPSHOT_AFTER: '6' });
  const file = join(tempDir(), 'device-a.db');
  const online = { serverUrl: server.url, room: ROOM, blockWebrtc: true, relayGraceMs: 0, sealedKey: '55'.repeat(32) };
  const old = ['a 0', 'a 1', 'a 2'];
  const fresh = ['b 0', 'b 1', 'b 2', 'b 3', 'b 4'];

  // A syncs three entries (cursor 3), then goes offline: provider destroyed, persistence kept.
  const a = peer('a', { PERSIST_FILE: file });
  await a.send('start', online);
  await a.waitStatus('relay');
  await pushAcked(a, old);
  await a.send('stored');
  await a.send('destroy');
  await a.close();

  const res = await fetch(`${server.url}/admin/rooms/${ROOM}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(res.status).toBe(200);

  // B writes the recreated room past A's cursor: seq 1..5.
  const b = peer('b');
  await b.send('start', online);
  await b.waitStatus('relay');
  await pushAcked(b, fresh);
  await b.close();

  // A comes back with its stored cursor (3) and document.
  const back = peer('a-again', { PERSIST_FILE: file });
  const since = back.mark;
  await back.send('start', online);
  await back.waitTexts(old);
  await back.waitFor((e) => (e.ev === 'error' && e['code'] === 4410) || (e.ev === 'status' && e['relay'] === true), 'room deleted, or caught up', 10_000, since);
  // An edit now: before generations it became the room's 6th entry and the server asked this
  // device (the only writer) for a snapshot covering 1..6.
  await back.send('push', { text: 'a after' });
  await back.waitFor(pendingIs(1), 'a after pending', 5_000, since);

  // C, a new device: its entry takes the room to the snapshot threshold (if it is not there yet).
  const c = peer('c');
  await c.send('start', online);
  await c.waitStatus('relay');
  await pushAcked(c, ['c 0']);
  await until(async () => (await metric(server, 'sync_sealed_snapshots_total')) >= 1, 'a snapshot stored');

  // D, another new device, reads the room from storage (the snapshot, then what follows).
  const d = peer('d');
  await d.send('start', online);
  await d.waitStatus('relay');
  await d.waitFor((e) => e.ev === 'messages' && (e['texts'] as string[]).includes('c 0'), 'the latest entry at d');
  const dState = (await d.send('state')) as State;
  expect(dState.texts.sort()).toEqual([...fresh, 'c 0'].sort());

  // A: told the room was deleted (once), got nothing of the new room, kept its copy and its edit.
  const aState = (await back.send('state')) as State;
  expect(back.events.slice(since).filter((e) => e.ev === 'error' && e['code'] === 4410)).toHaveLength(1);
  expect(aState.texts.sort()).toEqual([...old, 'a after'].sort());
  expect(aState.sealedStats.applied).toBe(0);
  expect(aState.sockets.filter((s) => s.path === `/sealed/${ROOM}`)).toHaveLength(1);
}, 90_000);

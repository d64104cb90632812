/**
 * Sealed rooms end to end: SyncProvider devices in separate processes (no shared
 * BroadcastChannel), WebRTC made impossible, the real server in this process.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET } from '../../../test/helpers/server.js';
import { sealedRegistry } from '../../../apps/server/src/routes/sealed/index.js';
import { PeerProcess } from './helpers/peer-process.js';
import { metric } from './helpers/metrics.js';
import { until } from './helpers/until.js';

const scope = serverPerTest();
afterEach(() => scope.close());

const KEY = randomBytes(32).toString('hex');

function peer(name: string, env: Record<string, string> = {}): PeerProcess {
  const p = new PeerProcess(name, { TOKEN_SECRET: TEST_SECRET, ...env });
  scope.track(p);
  return p;
}

/** Starts a device on the sealed path; WebRTC cannot connect (no candidates). */
async function startSealed(p: PeerProcess, room: string, extra: Record<string, unknown> = {}): Promise<void> {
  await p.send('start', { serverUrl: scope.current.url, room, relayGraceMs: 500, blockWebrtc: true, sealedKey: KEY, ...extra });
}

describe('sealed rooms, two devices', () => {
  it('sync through /sealed with WebRTC impossible; presence crosses; a device that leaves disappears at once; nothing goes to /relay', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_ROOM_TYPES: 'conversation' });
    const room = 'test-conversation-sealed-two';
    const [a, b] = [peer('phone'), peer('desktop')];
    await Promise.all([startSealed(a, room), startSealed(b, room)]);
    await Promise.all([a.waitStatus('relay'), b.waitStatus('relay')]);
    await a.send('push', { text: 'one' });
    await b.send('push', { text: 'two' });
    await Promise.all([a.waitTexts(['one', 'two']), b.waitTexts(['one', 'two'])]);
    await a.waitFor((e) => e.ev === 'status' && e['peers'] === 1, 'phone sees the desktop');
    const state = (await a.send('state')) as { awareness: string[]; sockets: Array<{ path: string }> };
    expect(state.awareness).toEqual(['desktop', 'phone']);
    expect(state.sockets.some((s) => s.path.startsWith('/relay'))).toBe(false);
    expect(state.sockets.some((s) => s.path === `/sealed/${room}`)).toBe(true);
    expect(await metric(server, 'sync_relay_updates_total')).toBe(0);
    expect(await metric(server, 'sync_sealed_envelopes_total')).toBeGreaterThan(0);
    const mark = a.mark;
    await b.send('exit');
    // well before the 30 s awareness timeout: peer-left
    await a.waitFor((e) => e.ev === 'status' && e['peers'] === 0, 'the desktop gone from presence', 5000, mark);
    expect(a.events.some((e) => e.ev === 'error')).toBe(false);
  });

  it('mailbox: edits made while the other device is offline reach it when it comes', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const room = 'test-conversation-sealed-mailbox';
    const a = peer('phone');
    await a.send('push', { text: 'written before connecting' });
    await startSealed(a, room, { relayGraceMs: 60_000 });
    await a.waitStatus('relay');
    for (const text of ['m1', 'm2', 'm3']) await a.send('push', { text });
    await a.send('exit');
    const b = peer('desktop');
    await startSealed(b, room, { relayGraceMs: 60_000 });
    await b.waitTexts(['written before connecting', 'm1', 'm2', 'm3']);
  });

  it('a device with the wrong key gets errors and nothing else, while the others keep syncing', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const room = 'test-conversation-sealed-wrongkey';
    const [a, b, c] = [peer('phone'), peer('desktop'), peer('intruder')];
    await Promise.all([startSealed(a, room), startSealed(b, room), startSealed(c, room, { sealedKey: randomBytes(32).toString('hex') })]);
    await a.send('push', { text: 'secret' });
    await b.waitTexts(['secret']);
    await c.waitFor((e) => e.ev === 'error' && e['source'] === 'sealed', 'a sealed error');
    await c.send('push', { text: 'from the intruder' });
    await b.send('push', { text: 'after' });
    await a.waitTexts(['secret', 'after']);
    const state = (await c.send('state')) as { texts: string[] };
    expect(state.texts).toEqual(['from the intruder']);
    // the others report what they cannot open, and apply nothing of it
    await a.waitFor((e) => e.ev === 'error' && e['source'] === 'sealed', 'phone: the intruder entry does not open');
    expect(((await a.send('state')) as { texts: string[] }).texts.sort()).toEqual(['after', 'secret']);
  });
});

describe('sealed compaction', () => {
  it('a new device catches up after 2,000 edits from a snapshot plus a short tail', async () => {
    // one envelope per edit here (mergeMs 0), faster than the default per-connection rate limit
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', PERSIST_FLUSH_MS: '20', MAX_MESSAGES_PER_SECOND: '100000' });
    const room = 'test-conversation-sealed-compact';
    const a = peer('phone', { QUIET_TEXTS: '1' });
    await startSealed(a, room, { relayGraceMs: 60_000, mergeMs: 0 });
    await a.waitStatus('relay');
    await a.send('pushMany', { prefix: 'edit ', count: 2000 });
    expect(a.events.filter((e) => e.ev === 'error')).toEqual([]);
    const store = sealedRegistry(server.app)?.store;
    if (!store) throw new Error('no sealed store');
    // every edit acknowledged (committed), and a snapshot stored meanwhile
    await until(async () => ((await a.send('state')) as { sealedPending: number }).sealedPending === 0 && (await store.stats(room)).snapshotCovers > 0, 'edits committed');
    const stats = await store.stats(room);
    expect(stats.head).toBeGreaterThan(500);
    expect(stats.snapshotCovers).toBeGreaterThan(0);
    expect(stats.entries).toBeLessThanOrEqual(500 + 100);
    expect(await metric(server, 'sync_sealed_snapshots_total')).toBeGreaterThan(0);
    const b = peer('tablet', { QUIET_TEXTS: '1' });
    await startSealed(b, room);
    await b.waitFor((e) => e.ev === 'count' && e['n'] === 2000, 'all 2,000 edits', 30_000);
  });
});

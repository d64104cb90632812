/**
 * The admin API on one instance (SQLite): off without ADMIN_TOKEN, 401 in the errors.md shape
 * with a wrong one; revoke closes a sub's sockets 4401, refuses its reconnects, leaves others
 * alone and survives a restart; list / inspect / delete rooms, the delete closing sockets 4410,
 * leaving storage empty (read from the file) and the next client on an empty document.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SignJWT } from 'jose';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { SQLITE_FILE_NAME } from '../src/relay/persistence/sqlite.js';
import { serverPerTest, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { RawClient as RelayClient, docUntil, firstCloseCode, stockClient, synced, textOf } from '../../../test/fixtures/relay-clients.js';
import { RawClient as SignalClient } from './signaling-client.js';

const scope = serverPerTest();
afterEach(() => scope.close());
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const ADMIN_TOKEN = 'admin-token-for-the-tests-0123456789';
const ROOM = 'acme-conversation-admin';

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'admin-api-'));
  dirs.push(d);
  return d;
}

function env(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return { AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN, STORAGE: 'sqlite', DATA_DIR: dir, PERSIST_FLUSH_MS: '10', ...extra };
}

async function admin(server: TestServer, method: string, path: string, body?: unknown, token = ADMIN_TOKEN): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function relay(server: TestServer, token: string): Promise<RelayClient> {
  const c = await RelayClient.connect(`${server.wsUrl}/relay/${ROOM}?token=${token}`);
  scope.track(c);
  return c;
}

describe('admin API access', () => {
  it('is a plain 404 without ADMIN_TOKEN', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    expect((await admin(server, 'GET', '/admin/rooms')).status).toBe(404);
    expect((await admin(server, 'POST', '/admin/revoke', { sub: 'a' })).status).toBe(404);
  });

  it('answers 401 in the errors.md shape without the right bearer token, and 400 for a bad body', async () => {
    const server = await scope.start(env(dataDir()));
    for (const token of ['wrong', '', `${ADMIN_TOKEN}x`]) {
      const r = await admin(server, 'GET', '/admin/rooms', undefined, token);
      expect(r.status).toBe(401);
      expect(r.json).toMatchObject({ error: 'ERR_TOKEN_INVALID', message: expect.any(String) as string });
    }
    expect((await admin(server, 'POST', '/admin/revoke', { nobody: 1 })).json).toMatchObject({ error: 'ERR_BAD_REQUEST' });
    expect((await admin(server, 'POST', '/admin/revoke', { sub: 'a', until: 5 })).status).toBe(400);
    expect((await admin(server, 'GET', '/admin/rooms?limit=0')).status).toBe(400);
    const logged = JSON.stringify(server.logs);
    expect(logged).toContain('admin request refused');
    expect(logged).not.toContain(ADMIN_TOKEN);
  });
});

describe('POST /admin/revoke', () => {
  it('closes the sub\'s relay and signaling sockets 4401, refuses it until `until`, even after a restart; others stay', async () => {
    const dir = dataDir();
    let server = await scope.start(env(dir));
    const alice = await testToken('alice', ['acme-*']);
    const bob = await testToken('bob', ['acme-*']);
    const [ar, as] = [await relay(server, alice), await SignalClient.open(`${server.wsUrl}/signal?token=${alice}`)];
    scope.track(as);
    const [br, bs] = [await relay(server, bob), await SignalClient.open(`${server.wsUrl}/signal?token=${bob}`)];
    scope.track(bs);
    await ar.next((m) => m.type === 'sync-step1');

    const res = await admin(server, 'POST', '/admin/revoke', { sub: 'alice' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ revoked: { sub: 'alice', until: expect.any(Number) as number }, closed: 2 });
    const until = (res.json['revoked'] as { until: number }).until;
    expect(until - Date.now() / 1000).toBeGreaterThan(86400 - 60);
    expect(await ar.closed()).toBe(4401);
    expect(await as.closedWithin()).toEqual({ code: 4401, reason: 'token revoked' });
    expect(br.closeCode).toBeNull();
    await bs.roundTrip();

    const again = await SignalClient.open(`${server.wsUrl}/signal?token=${alice}`);
    expect(await again.closedWithin()).toEqual({ code: 4401, reason: 'token revoked' });
    const log = server.logs.find((l) => l['admin'] === 'revoke');
    expect(log).toMatchObject({ sub: 'alice', closed: 2 });
    expect(JSON.stringify(server.logs)).not.toContain(alice);

    await scope.close();
    server = await scope.start(env(dir));
    const afterRestart = await relay(server, alice);
    expect(await afterRestart.closed()).toBe(4401);
    const stillBob = await relay(server, bob);
    await stillBob.next((m) => m.type === 'sync-step1');
  });

  it('revokes one token by jti, leaving the sub\'s other tokens', async () => {
    const server = await scope.start(env(dataDir()));
    const phone = await testToken('alice', ['acme-*'], { jti: 'alice-phone' });
    const laptop = await testToken('alice', ['acme-*'], { jti: 'alice-laptop' });
    const [p, l] = [await relay(server, phone), await relay(server, laptop)];
    await l.next((m) => m.type === 'sync-step1');
    expect((await admin(server, 'POST', '/admin/revoke', { jti: 'alice-phone' })).json).toMatchObject({ closed: 1 });
    expect(await p.closed()).toBe(4401);
    expect(l.closeCode).toBeNull();
  });
});

/**
 * A token is accepted until its `exp` + 30 s (clock skew), and `exp` may lie up to
 * TOKEN_MAX_TTL_SECONDS + 30 s ahead when it has no `iat` (packages/shared/src/auth/room-token.ts):
 * a revocation must last until the last moment a token it covers still verifies. The clock is
 * moved with a fake Date only (timers and sockets stay real).
 */
describe('POST /admin/revoke: the revocation outlasts the tokens it covers', () => {
  const MAX = 600;
  /** signed by hand: no `iat`, so exp - now may be TOKEN_MAX_TTL_SECONDS + 30 s */
  const tokenUntil = (sub: string, exp: number) =>
    new SignJWT({ rooms: ['acme-*'] }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime(exp).sign(new TextEncoder().encode(TEST_SECRET));
  /** a signaling socket opened with `token` when the clock reads `at` (unix seconds) */
  async function openAt(server: TestServer, token: string, at: number) {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(at * 1000);
      const c = await SignalClient.open(`${server.wsUrl}/signal?token=${token}`);
      scope.track(c);
      // admitted: the pong comes back; refused: the close comes first
      return await Promise.race([c.closedWithin(), c.roundTrip().then(() => 'admitted' as const)]);
    } finally {
      vi.useRealTimers();
    }
  }

  it('by default: the longest-lived token is refused up to its last accepted second', async () => {
    const server = await scope.start(env(dataDir(), { TOKEN_MAX_TTL_SECONDS: String(MAX) }));
    const t0 = Math.floor(Date.now() / 1000);
    const token = await tokenUntil('mallory', t0 + MAX + 30);
    expect((await admin(server, 'POST', '/admin/revoke', { sub: 'mallory' })).status).toBe(200);
    // exp + 30 s not yet reached: the token still verifies, so only the revocation refuses it
    expect(await openAt(server, token, t0 + MAX + 59)).toEqual({ code: 4401, reason: 'token revoked' });
  });

  it('with an `until`: a token expiring by then is refused through its 30 s of clock skew', async () => {
    const server = await scope.start(env(dataDir(), { TOKEN_MAX_TTL_SECONDS: String(MAX) }));
    const t0 = Math.floor(Date.now() / 1000);
    const token = await tokenUntil('mallory', t0 + 100);
    const res = await admin(server, 'POST', '/admin/revoke', { sub: 'mallory', until: t0 + 100 });
    expect(res.status).toBe(200);
    expect(await openAt(server, token, t0 + 129)).toEqual({ code: 4401, reason: 'token revoked' });
  });
});

describe('/admin/rooms', () => {
  it('lists and inspects rooms; DELETE closes sockets 4410, empties storage, and the next client starts empty', async () => {
    const dir = dataDir();
    const server = await scope.start(env(dir));
    const token = await testToken('alice', ['acme-*']);
    const [a, b] = [stockClient(3, server.wsUrl, ROOM, { token }), stockClient(3, server.wsUrl, ROOM, { token })];
    scope.track(a, b);
    const other = stockClient(3, server.wsUrl, 'acme-conversation-other', { token });
    scope.track(other);
    await Promise.all([synced(a.p), synced(b.p), synced(other.p)]);
    a.doc.getText('text').insert(0, 'secret message');
    other.doc.getText('text').insert(0, 'kept');
    await docUntil(b.doc, () => textOf(b.doc) === 'secret message');
    const registry = server.app.relayRooms;
    await registry?.drain();

    const list = await admin(server, 'GET', '/admin/rooms?prefix=acme-conversation-&limit=1');
    expect(list.json).toMatchObject({
      rooms: [{ room: 'acme-conversation-admin', sealed: false, connections: 2, entries: 1 }],
      next: 'acme-conversation-admin',
    });
    const room0 = (list.json['rooms'] as Array<{ bytes: number; lastChangeAt: number }>)[0];
    expect(room0?.bytes).toBeGreaterThan(0);
    expect(room0?.lastChangeAt).toBeGreaterThan(Date.now() - 60_000);
    const page2 = await admin(server, 'GET', '/admin/rooms?prefix=acme-conversation-&after=acme-conversation-admin');
    expect(page2.json).toMatchObject({ rooms: [{ room: 'acme-conversation-other' }], next: null });
    expect((await admin(server, 'GET', `/admin/rooms/${ROOM}`)).json).toMatchObject({ room: ROOM, connections: 2 });

    const closes = Promise.all([a, b].map((c) => firstCloseCode(c)));
    const del = await admin(server, 'DELETE', `/admin/rooms/${ROOM}`);
    expect(del).toEqual({ status: 200, json: { deleted: true, closed: 2, instances: 1 } });
    expect(await closes).toEqual([4410, 4410]);

    const db = new Database(join(dir, SQLITE_FILE_NAME), { readonly: true });
    try {
      const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table} WHERE room = ?`).get(ROOM) as { n: number }).n;
      expect([count('relay_updates'), count('relay_snapshots'), count('relay_room_meta')]).toEqual([0, 0, 0]);
      expect((db.prepare('SELECT count(*) AS n FROM relay_updates WHERE room = ?').get('acme-conversation-other') as { n: number }).n).toBe(1);
    } finally {
      db.close();
    }
    expect((await admin(server, 'GET', `/admin/rooms/${ROOM}`)).status).toBe(404);

    const fresh = stockClient(3, server.wsUrl, ROOM, { token });
    scope.track(fresh);
    await synced(fresh.p);
    expect(textOf(fresh.doc)).toBe('');
    expect(server.logs.find((l) => l['admin'] === 'delete')).toMatchObject({ room: ROOM, closed: 2 });
  });
});


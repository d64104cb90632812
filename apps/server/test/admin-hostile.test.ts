/**
 * The admin API against hostile input, on PostgreSQL (which refuses a NUL in text with 22021):
 * room names the shared parser refuses, listing prefixes and cursors outside the room-name
 * characters, and a sub or jti with control characters are 400 ERR_BAD_REQUEST before storage
 * sees them, with no error-level log line.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET, type TestServer } from '../../../test/helpers/server.js';
import { schemaForThisFile, urlWithSchema } from './postgres-helpers.js';
import { REFUSED_LINES_PER_MINUTE } from '../src/routes/admin/index.js';

const scope = serverPerTest();
afterEach(() => scope.close());
const schema = schemaForThisFile('admhostile');
const ADMIN_TOKEN = 'admin-token-for-the-hostile-tests-01';

async function call(server: TestServer, method: string, path: string, body?: string, token: string | null = ADMIN_TOKEN): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const errorLines = (server: TestServer) => server.logs.filter((l) => (l['level'] as number) >= 50);

describe('admin API input on PostgreSQL', () => {
  it('a NUL or other non-room-name text in a room, prefix, cursor, sub or jti is a 400, never a 500 or an error log', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN, STORAGE: 'postgres', DATABASE_URL: urlWithSchema(schema) });
    const refused: Array<[string, string, string?]> = [
      ['GET', '/admin/rooms/a%00b'],
      ['GET', '/admin/rooms/acme-conversation-a%00b'],
      ['DELETE', '/admin/rooms/a%00b'],
      ['DELETE', '/admin/rooms/acme-conversation-x%0A'],
      ['GET', '/admin/rooms/a%20b'],
      ['GET', '/admin/rooms?prefix=a%00'],
      ['GET', '/admin/rooms?prefix=acme%20'],
      ['GET', '/admin/rooms?after=acme-conversation-%00'],
      ['POST', '/admin/revoke', JSON.stringify({ sub: 'a\u0000' })],
      ['POST', '/admin/revoke', JSON.stringify({ jti: 'device\u001b[31m' })],
      ['POST', '/admin/revoke', JSON.stringify({ sub: 'alice\u0085' })],
    ];
    for (const [method, path, body] of refused) {
      const r = await call(server, method, path, body);
      expect({ method, path, body, status: r.status, error: r.json['error'] }).toEqual({ method, path, body, status: 400, error: 'ERR_BAD_REQUEST' });
    }
    // what a room name may hold still works, down to storage and back
    expect((await call(server, 'GET', '/admin/rooms?prefix=acme-conversation-&after=acme-conversation-a.b:c_d')).status).toBe(200);
    expect((await call(server, 'GET', '/admin/rooms/acme-conversation-a.b:c_d')).status).toBe(404);
    expect((await call(server, 'DELETE', '/admin/rooms/acme-conversation-a.b:c_d')).status).toBe(200);
    expect((await call(server, 'POST', '/admin/revoke', JSON.stringify({ sub: 'ünïcode user 1' }))).status).toBe(200);
    // A room stored under an earlier ROOM_TYPES (its type is not allowed now) can still be read and deleted.
    await server.app.relayRooms.store.append([{ room: 'acme-retired-1', updates: [new Uint8Array([0, 0])] }]);
    expect((await call(server, 'GET', '/admin/rooms/acme-retired-1')).status).toBe(200);
    expect((await call(server, 'DELETE', '/admin/rooms/acme-retired-1')).status).toBe(200);
    expect((await call(server, 'GET', '/admin/rooms/acme-retired-1')).status).toBe(404);
    expect(errorLines(server)).toEqual([]);
    expect(JSON.stringify(server.logs)).not.toContain('22021');
  });
});

describe('admin API refusals', () => {
  it('any /admin/* path, known or not, is a 401 without the token; an unknown one is a 404 with it', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN, STORAGE: 'memory' });
    for (const [method, path] of [['GET', '/admin/whatever'], ['POST', '/admin/rooms/x/y'], ['PUT', '/admin/revoke'], ['GET', '/admin/'], ['DELETE', '/admin/a/b/c']] as const) {
      const without = await call(server, method, path, undefined, null);
      expect({ method, path, status: without.status, error: without.json['error'] }).toEqual({ method, path, status: 401, error: 'ERR_TOKEN_INVALID' });
      expect((await call(server, method, path)).status).toBe(404);
    }
  });

  it('refused requests are logged within a budget: a flood writes a bounded number of lines', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN, STORAGE: 'memory' });
    for (let i = 0; i < 200; i++) expect((await call(server, 'GET', '/admin/rooms', undefined, i % 2 ? 'wrong' : null)).status).toBe(401);
    const refused = server.logs.filter((l) => l['msg'] === 'admin request refused: bad or missing admin token');
    expect(refused.length).toBe(REFUSED_LINES_PER_MINUTE);
    expect(refused[0]).toMatchObject({ level: 40, ip: '127.0.0.1', url: '/admin/rooms' });
    await server.close(); // the budget reports what it held back
    expect(server.logs.filter((l) => l['msg'] === 'log lines suppressed')).toMatchObject([{ suppressed: 200 - REFUSED_LINES_PER_MINUTE }]);
    expect(JSON.stringify(server.logs)).not.toContain(ADMIN_TOKEN);
  });
});

/**
 * MAX_NEW_ROOMS_PER_SUB_PER_HOUR across two instances (Redis + PostgreSQL): one sub creating rooms
 * alternately on both is refused (4429) at the configured total, not at twice it; the same room
 * again and other subs still open.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startServers, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { RawClient, metric } from '../../../test/fixtures/relay-clients.js';
import { urlWithSchema, schemaForThisFile } from './postgres-helpers.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const schema = schemaForThisFile('quota');
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function open(server: TestServer, room: string, token: string): Promise<RawClient> {
  const c = await RawClient.connect(`${server.wsUrl}/relay/${room}?token=${token}`);
  cleanup.push(() => c.close());
  return c;
}

const ready = (c: RawClient) => c.next((m) => m.type === 'sync-step1', 5000, 'sync step 1');

describe('MAX_NEW_ROOMS_PER_SUB_PER_HOUR on two instances', () => {
  it('counts one sub\'s new rooms across the instances (Redis)', async () => {
    const servers = await startServers(2, {
      AUTH_SECRET: TEST_SECRET,
      STORAGE: 'postgres',
      DATABASE_URL: urlWithSchema(schema),
      REDIS_URL,
      REDIS_PREFIX: `test-${randomBytes(5).toString('hex')}:`,
      MAX_NEW_ROOMS_PER_SUB_PER_HOUR: '3',
    });
    cleanup.push(() => Promise.all(servers.map((s) => s.close())));
    const [s0, s1] = servers as [TestServer, TestServer];
    const [alice, bob] = [await testToken('alice', ['acme-*']), await testToken('bob', ['acme-*'])];

    await ready(await open(s0, 'acme-conversation-q1', alice));
    await ready(await open(s1, 'acme-conversation-q2', alice));
    await ready(await open(s0, 'acme-conversation-q3', alice));
    const fourth = await open(s1, 'acme-conversation-q4', alice);
    expect(await fourth.closed()).toBe(4429);
    expect(await metric(s1.url, 'sync_quota_refusals_total', { quota: 'new_rooms' })).toBe(1);

    await ready(await open(s1, 'acme-conversation-q1', alice)); // counted on s0 already: not twice
    await ready(await open(s1, 'acme-conversation-q4', bob)); // another sub
    const again = await open(s0, 'acme-conversation-q5', alice);
    expect(await again.closed()).toBe(4429);
  });
});

/**
 * MAX_NEW_ROOMS_PER_SUB_PER_HOUR across two instances (Redis + PostgreSQL): one sub creating rooms
 * alternately on both is refused (4429) at the configured total, not at twice it; the same room
 * again and other subs still open. When Redis fails, the instance counts on its own (and warns).
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { createLogger, createServerMetrics } from '@sync-suite/shared/node';
import { RedisLink } from '../src/fanout/redis-link.js';
import { redisKeys } from '../src/fanout/redis-keys.js';
import { RedisNewRoomQuota } from '../src/limits/new-rooms.js';
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

describe('the new-room quota when Redis fails', () => {
  it('falls back to counting on this instance, with one warning', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    const log = createLogger({ level: 'info', destination: sink }) as unknown as FastifyBaseLogger;
    const link = new RedisLink({ url: REDIS_URL, metrics: createServerMetrics(), log });
    await link.connect();
    const quota = new RedisNewRoomQuota({ perHour: 2, link: Promise.resolve(link), keys: redisKeys(`test-${randomBytes(5).toString('hex')}:`), log });
    cleanup.push(() => quota.stop());
    expect(await quota.take('carol', 'r1')).toBe(true); // counted in Redis (and here)
    await link.close(); // Redis gone from now on
    expect(await quota.take('carol', 'r2')).toBe(true);
    expect(await quota.take('carol', 'r3')).toBe(false); // r1 and r2 counted here
    expect(await quota.take('carol', 'r1')).toBe(true); // the same room again
    expect(await quota.take('dan', 'r3')).toBe(true);
    expect(lines.filter((l) => String(l['msg']).startsWith('new-room quota: redis failed'))).toHaveLength(1);
  });
});

/**
 * Sealed rooms on two instances behind Redis + PostgreSQL: devices on different instances sync
 * (entries published after the commit with their seq), presence crosses, and markers written into
 * documents and presence never appear in the PostgreSQL tables or in Redis traffic.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startServers, TEST_SECRET, type TestServer } from '../../../test/helpers/server.js';
import { schemaForThisFile, urlWithSchema, withPg } from '../../../apps/server/test/postgres-helpers.js';
import { PeerProcess } from './helpers/peer-process.js';
import { until } from './helpers/until.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const schema = schemaForThisFile('sealedcluster');
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const KEY = randomBytes(32).toString('hex');

function peer(name: string): PeerProcess {
  const p = new PeerProcess(name, { TOKEN_SECRET: TEST_SECRET });
  cleanup.push(() => p.close());
  return p;
}

/** Every message on the deployment's Redis channels, recorded from a separate connection. */
async function redisRecorder(prefix: string): Promise<Buffer[]> {
  const sub = new Redis(REDIS_URL);
  cleanup.push(() => sub.disconnect());
  const seen: Buffer[] = [];
  sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => seen.push(channel, message));
  await sub.psubscribe(`${prefix}*`);
  return seen;
}

describe('sealed rooms across instances', () => {
  it('two instances behind Redis + PostgreSQL: devices on either sync; no marker in PostgreSQL or Redis', async () => {
    const prefix = `sealed-${randomBytes(4).toString('hex')}:`;
    const recorded = await redisRecorder(prefix);
    const servers: TestServer[] = await startServers(2, {
      AUTH_SECRET: TEST_SECRET,
      STORAGE: 'postgres',
      DATABASE_URL: urlWithSchema(schema),
      REDIS_URL,
      REDIS_PREFIX: prefix,
      PERSIST_FLUSH_MS: '20',
      SEALED_SNAPSHOT_AFTER: '4',
      LOG_LEVEL: 'warn',
    });
    for (const s of servers) cleanup.push(() => s.close());
    const [s1, s2] = servers as [TestServer, TestServer];
    const room = 'test-conversation-sealed-cluster';
    const docMarker = `DOCMARK${randomBytes(6).toString('hex')}`;
    const presenceMarker = `PRESMARK${randomBytes(6).toString('hex')}`;
    const [a, b] = [peer('phone'), peer('desktop')];
    const start = (p: PeerProcess, s: TestServer) => p.send('start', { serverUrl: s.url, room, relayGraceMs: 300, blockWebrtc: true, sealedKey: KEY });
    await Promise.all([start(a, s1), start(b, s2)]);
    await Promise.all([a.waitStatus('relay'), b.waitStatus('relay')]);
    const texts: string[] = [];
    for (let i = 0; i < 6; i++) {
      texts.push(`${docMarker} a${i}`);
      await a.send('push', { text: texts[i] });
    }
    await b.waitTexts(texts); // through Redis: b has written nothing that could make its instance read storage
    await b.send('push', { text: `${docMarker} from b` });
    texts.push(`${docMarker} from b`);
    await a.send('presence', { note: presenceMarker });
    await Promise.all([a.waitTexts(texts), b.waitTexts(texts)]);
    await until(async () => ((await b.send('state')) as { notes: string[] }).notes.includes(presenceMarker), 'presence across instances');
    // a device on the second instance, loading from PostgreSQL (snapshot + tail)
    const c = peer('tablet');
    await start(c, s2);
    await c.waitTexts(texts);
    const mark = b.mark;
    await a.send('exit');
    await b.waitFor((e) => e.ev === 'status' && e['peers'] === 1, 'the phone gone from presence on the other instance', 5000, mark);

    const tables = await withPg(async (pg) => {
      const rows = await pg.query<{ t: string }>(
        `SELECT string_agg(encode(convert_to(r::text, 'UTF8'), 'escape'), '') AS t FROM (
           SELECT room || encode(envelope, 'escape') AS r FROM "${schema}".sealed_entries
           UNION ALL SELECT room || coalesce(encode(snapshot, 'escape'), '') FROM "${schema}".sealed_rooms) x`,
      );
      const raw = await pg.query<{ envelope: Buffer }>(`SELECT envelope FROM "${schema}".sealed_entries UNION ALL SELECT snapshot FROM "${schema}".sealed_rooms WHERE snapshot IS NOT NULL`);
      const relay = await pg.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".relay_updates`);
      return { text: rows.rows[0]?.t ?? '', raw: Buffer.concat(raw.rows.map((r) => r.envelope)), relayRows: Number(relay.rows[0]?.n) };
    });
    const redis = Buffer.concat(recorded);
    expect(tables.text).toContain(room); // the search sees what is stored
    expect(tables.raw.length).toBeGreaterThan(0);
    expect(tables.relayRows).toBe(0);
    expect(redis.includes(room)).toBe(true); // and what crosses Redis
    for (const marker of [docMarker, presenceMarker]) {
      expect(tables.text.includes(marker), `${marker} in PostgreSQL`).toBe(false);
      expect(tables.raw.includes(marker), `${marker} in PostgreSQL bytes`).toBe(false);
      expect(redis.includes(marker), `${marker} in Redis`).toBe(false);
    }
  });
});

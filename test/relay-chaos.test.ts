/**
 * A CI-sized run of `npm run chaos` (scripts/chaos-run.ts) on PostgreSQL: the server process is
 * SIGKILLed 3 times while 10 stock writers write to 3 rooms; a new client then loads every room
 * fresh from the restarted server and finds every write. (SQLite: test/relay-durability.test.ts
 * does the same with four writers; `npm run chaos` runs both engines with 20 kills.)
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from '../scripts/chaos-run.js';

process.setMaxListeners(50); // each stock provider adds a process 'exit' listener

describe('relay chaos (SIGKILL while writing)', () => {
  it.each(['postgres'] as const)('%s: 3 kills, nothing lost', { timeout: 180_000 }, async (storage) => {
    const r = await runChaos({ storage, kills: 3, writers: 10, rooms: 3, upMs: 1000, everyMs: 25, databaseUrl: process.env['TEST_DATABASE_URL'] });
    expect(r.written).toBeGreaterThan(500);
    expect({ missing: r.missing, unexpected: r.unexpected }).toEqual({ missing: 0, unexpected: 0 });
  });
});

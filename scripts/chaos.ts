/**
 * `npm run chaos`: SIGKILL the real server CHAOS_KILLS times (20) while 10 stock writers write to
 * 3 rooms, for SQLite and PostgreSQL (CHAOS_STORAGE=sqlite|postgres for one), then load every room
 * fresh from a new client and check that every write is there (scripts/chaos-run.ts).
 * Prints one line per kill and a summary; exit code 0 when nothing was lost, 1 otherwise.
 */
import { runChaos, type ChaosResult } from './chaos-run.js';

process.setMaxListeners(50); // each stock provider adds a process 'exit' listener
const kills = Number(process.env['CHAOS_KILLS'] ?? 20);
const storages = (process.env['CHAOS_STORAGE'] ?? 'sqlite,postgres').split(',') as Array<'sqlite' | 'postgres'>;

const results: ChaosResult[] = [];
let failed = false;
for (const storage of storages) {
  try {
    const r = await runChaos({ storage, kills, writers: 10, rooms: 3, upMs: 1500, everyMs: 25, databaseUrl: process.env['DATABASE_URL'], log: (l) => console.log(`[${storage}] ${l}`) });
    results.push(r);
    if (r.missing > 0 || r.unexpected > 0) failed = true;
  } catch (err) {
    failed = true;
    console.log(`[${storage}] chaos run failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
for (const r of results) {
  console.log(`${r.storage}: ${r.kills} SIGKILLs, ${r.written} entries written, ${r.missing} missing, ${r.unexpected} unexpected, ${(r.durationMs / 1000).toFixed(1)} s`);
}
console.log(failed ? 'chaos: FAILED' : 'chaos: nothing lost');
process.exit(failed ? 1 : 0);

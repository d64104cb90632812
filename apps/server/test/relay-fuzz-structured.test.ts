/**
 * Structure-aware fuzzing of /relay (apps/server/test/fuzz/): FUZZ_ITERATIONS seeded inputs
 * (10,000 by default; `npm run fuzz` runs far more) against a live server while honest stock
 * clients write to their rooms. Bounds: no crash or error log, every refusal a 4400/4413, the
 * event loop never stalls 2 s or more, memory back near its start (within 48 MB, after a warm-up) once the rooms unloaded, and
 * each honest room served fresh is byte-identical to its writers' documents.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as Y from 'yjs';
import { serverPerTest } from '../../../test/helpers/server.js';
import { docUntil, stockProvider, synced, type StockProvider } from '../../../test/fixtures/relay-clients.js';
import { runRelayFuzz } from './fuzz/relay-fuzz-run.js';

const ITERATIONS = Number(process.env['FUZZ_ITERATIONS'] ?? 10_000);
const SEED = Number(process.env['FUZZ_SEED'] ?? 20261206);
/**
 * The event-loop stall bound (docs/limits.md). The loop is shared with the fuzzer's own input
 * building and is measured on a shared 2-core CI machine: 0.3-0.5 s idle, up to 1.1 s at load 8.
 */
const MAX_STALL_MS = 2000;
/** how far the heap may stay above its start once every room unloaded */
const MAX_HEAP_GROWTH_MB = 48;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMb = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

const scope = serverPerTest();
afterEach(() => scope.close());

describe('structured relay fuzz', () => {
  it(`${ITERATIONS} seeded inputs: no crash, no stall, memory back, honest rooms intact`, { timeout: Math.max(600_000, ITERATIONS * 30) }, async () => {
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '1000000', RELAY_AWARENESS_QUERY_INTERVAL_MS: '0', ROOM_IDLE_MS: '200' });
    const honestRooms = ['acme-conversation-honest-a', 'acme-conversation-honest-b'];
    const writers: Array<{ doc: Y.Doc; p: StockProvider; room: string }> = [];
    for (const room of honestRooms) {
      for (const version of [3, 2] as const) {
        const doc = new Y.Doc();
        const p = stockProvider(version, server.wsUrl, room, doc);
        scope.track(p, doc);
        writers.push({ doc, p, room });
      }
    }
    await Promise.all(writers.map((w) => synced(w.p)));
    let disconnects = 0;
    for (const w of writers) (w.p as { on(e: 'connection-close', f: () => void): void }).on('connection-close', () => disconnects++);
    for (const w of writers) w.p.awareness.setLocalStateField('user', `writer-${w.doc.clientID}`);
    let n = 0;
    const writing = setInterval(() => {
      for (const w of writers) w.doc.getArray<string>('log').push([`${w.doc.clientID}:${n}`]);
      n++;
    }, 100);
    const fuzz = (iterations: number, seed: number, progress?: (done: number) => void) =>
      runRelayFuzz({
        wsUrl: server.wsUrl,
        iterations,
        seed,
        honestRooms,
        scratchRooms: Array.from({ length: 6 }, (_, i) => `acme-conversation-scratch-${seed}-${i}`),
        honestIds: () => writers.map((w) => w.doc.clientID),
        progress,
      });
    // Warm-up (code loaded and compiled, buffer pools filled), then the baseline.
    await fuzz(500, SEED + 1);
    expect(server.logs.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
    server.logs.length = 0;
    const heapBefore = heapMb();

    let report;
    const fuzzStart = Date.now();
    try {
      report = await fuzz(ITERATIONS, SEED, (done) => {
        if (ITERATIONS > 10_000) console.error(`fuzz: ${done}/${ITERATIONS} inputs, ${((Date.now() - fuzzStart) / 1000).toFixed(0)} s`);
      });
    } finally {
      clearInterval(writing);
    }
    console.log(JSON.stringify(report));
    expect(report.inputs).toBe(ITERATIONS);
    expect(report.maxStallMs).toBeLessThan(MAX_STALL_MS);
    for (const key of Object.keys(report.closes)) expect(['scratch:4400', 'scratch:4413', 'honest:4400', 'honest:4413']).toContain(key);
    expect(server.logs.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    // Honest rooms: never disturbed, and served fresh exactly as their writers have them.
    expect(disconnects).toBe(0);
    for (const room of honestRooms) {
      const [a, b] = writers.filter((w) => w.room === room) as [(typeof writers)[0], (typeof writers)[0]];
      const fresh = new Y.Doc();
      const p = stockProvider(3, server.wsUrl, room, fresh);
      scope.track(p, fresh);
      await synced(p);
      const same = (x: Y.Doc) => Buffer.from(Y.encodeStateAsUpdate(x)).equals(Buffer.from(Y.encodeStateAsUpdate(a.doc)));
      // a's last edits may still be reaching b, or b's reaching a: re-checked on either's updates
      await docUntil([a.doc, b.doc], () => same(b.doc), 10_000, 'writers in step');
      await docUntil(fresh, () => same(fresh), 10_000, `${room} served fresh as written`);
      expect(a.doc.getArray('log').length).toBe(2 * n);
      p.destroy();
    }

    // Memory: scratch rooms unload (ROOM_IDLE_MS), the heap comes back near where it was (the
    // log lines this harness keeps, one per refusal, are not the server's: dropped first).
    server.logs.length = 0;
    const deadline = Date.now() + 30_000;
    let heapAfter = heapMb();
    while (heapAfter - heapBefore >= MAX_HEAP_GROWTH_MB && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      heapAfter = heapMb();
    }
    console.log(JSON.stringify({ heapBeforeMb: heapBefore.toFixed(1), heapAfterMb: heapAfter.toFixed(1) }));
    expect(heapAfter - heapBefore).toBeLessThan(MAX_HEAP_GROWTH_MB);
  });
});

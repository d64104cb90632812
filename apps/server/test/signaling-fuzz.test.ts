/**
 * Fuzz: 10,000+ generated frames (random bytes, random JSON, mutated valid messages, huge
 * arrays) against a live server. Afterwards it is up, its heap is back near where it
 * started, its bookkeeping is empty, and a well-behaved pair still exchanges messages.
 * The generator is seeded: a failure names the seed (FUZZ_SEED reproduces it).
 */
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { RawClient, metricValue } from './signaling-client.js';
import { generateFrame, prng } from './signaling-fuzz-frames.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** 10,000 in CI; `npm run fuzz` sets FUZZ_ITERATIONS higher. */
const FRAMES = Number(process.env['FUZZ_ITERATIONS'] ?? 10_000);
const LANES = 8;
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000);

const scope = serverPerTest();
afterEach(() => scope.close());

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** Sends frames one by one, each followed by a ping, reconnecting whenever the server closes. */
async function lane(s: TestServer, frames: number, next: () => string | Buffer, closes: Map<number, number>): Promise<void> {
  let c = await RawClient.open(`${s.wsUrl}/signal`);
  for (let i = 0; i < frames; i++) {
    c.send(next());
    const from = c.frames.length;
    c.send({ type: 'ping' });
    // Either the frame was handled (the pong arrives) or the server closed the socket.
    const handled = await c.find(from, (m) => m['type'] === 'pong', 10_000).then(
      () => true,
      () => false,
    );
    if (!handled) {
      const { code } = await c.closedWithin();
      closes.set(code, (closes.get(code) ?? 0) + 1);
      c = await RawClient.open(`${s.wsUrl}/signal`);
    }
  }
  await c.close();
}

async function pairExchanges(s: TestServer): Promise<void> {
  const room = 'fuzz-conversation-after';
  const a = await RawClient.open(`${s.wsUrl}/signal`);
  const b = await RawClient.open(`${s.wsUrl}/signal`);
  a.send({ type: 'subscribe', topics: [room] });
  b.send({ type: 'subscribe', topics: [room] });
  await a.roundTrip();
  await b.roundTrip();
  a.send({ type: 'publish', topic: room, data: { from: 'a' } });
  expect(await b.find(0, (m) => m['type'] === 'publish')).toEqual({ type: 'publish', topic: room, data: { from: 'a' }, clients: 2 });
  b.send({ type: 'publish', topic: room, data: { from: 'b' } });
  expect(await a.find(0, (m) => (m['data'] as { from?: string } | undefined)?.from === 'b')).toMatchObject({ clients: 2 });
  await a.close();
  await b.close();
}

describe('WS /signal fuzz', () => {
  it(`survives ${FRAMES} generated frames (seed ${SEED})`, { timeout: 60_000 + FRAMES * 10 }, async () => {
    const server = await scope.start({ LOG_LEVEL: 'warn', MAX_MESSAGES_PER_SECOND: '100000' });
    const s = server;
    const random = prng(SEED);
    const next = () => generateFrame(random);
    const closes = new Map<number, number>();
    await lane(s, 300, next, closes); // warm-up: JIT and lazy allocations before the baseline
    const before = heapAfterGc();
    await Promise.all(Array.from({ length: LANES }, () => lane(s, Math.ceil(FRAMES / LANES), next, closes)));
    await Promise.all([...s.app.sync.admission.sockets].map((ws) => once(ws, 'close')));
    const after = heapAfterGc();

    if (process.env['FUZZ_REPORT']) process.stdout.write(`fuzz seed=${SEED} heap before=${before} after=${after} closes=${JSON.stringify([...closes])}\n`);
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    expect(await metricValue(s, 'signalingTopics')).toBe(0);
    expect(await metricValue(s, 'signalingConnections')).toBe(0);
    // The generator reached the parser, the limits and the handlers, not just one path.
    expect(closes.get(4400) ?? 0).toBeGreaterThan(1000);
    expect(closes.get(1009) ?? 0).toBeGreaterThan(10);
    expect(closes.get(4409) ?? 0).toBeGreaterThan(10);
    expect(await metricValue(s, 'signalingMessages', { type: 'publish' })).toBeGreaterThan(100);
    expect(after - before, `heap grew from ${before} to ${after} bytes`).toBeLessThan(8 * 1024 * 1024);
    await pairExchanges(s);
  });
});

/**
 * Fuzz WS /sealed: 10,000 seeded frames, structure-aware (valid hello, update, snapshot and
 * presence messages with hostile sizes, cursors and claims; valid frames mutated, cut short or
 * extended; random bytes), from several lanes that reconnect whenever the server closes them.
 * Afterwards: only refusal close codes were used, the server still answers, no connection is
 * left, the heap is back near where it started, and an honest room written before the storm
 * reads back byte-identical for a new device. FUZZ_SEED reproduces a run.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, expect, it } from 'vitest';
import { encodeSealedMessage, writeSealedHello, writeSealedPresence, writeSealedSnapshot, writeSealedUpdate } from '@sync-suite/shared';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { metricValue } from './signaling-client.js';
import { prng } from './signaling-fuzz-frames.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** 10,000 in CI; `npm run fuzz` sets FUZZ_ITERATIONS higher. */
const FRAMES = Number(process.env['FUZZ_ITERATIONS'] ?? 10_000);
const LANES = 8;
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000);
const HONEST = 'acme-conversation-honest';
/** Refusals the server may answer hostile frames with: malformed, too big, too costly, rate, a generation the room does not have. */
const ALLOWED_CLOSES = new Set([4400, 1009, 4410, 4413, 4429, 1005, 1006]);

const scope = serverPerTest();
afterEach(() => scope.close());

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const bytes = (r: Rand, n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(r, 256));
/** Sizes that matter: empty, tiny, around the limits, over them. */
const size = (r: Rand): number => [0, 1, 3, 24, 40, 200, 4096, 16_384, 16_385, 70_000][int(r, 10)] as number;
/** Numbers that matter: 0, small, huge, beyond 2^53. */
const num = (r: Rand): number => [0, 1, 2, 7, 1000, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER][int(r, 8)] as number;

function validFrame(r: Rand): Uint8Array {
  switch (int(r, 4)) {
    case 0:
      // with or without a generation (absent: a client before generations); one the room lacks closes 4410
      return encodeSealedMessage((e) => writeSealedHello(e, num(r), r() < 0.3 ? undefined : num(r)));
    case 1:
      return encodeSealedMessage((e) => writeSealedUpdate(e, num(r), bytes(r, size(r))));
    case 2:
      return encodeSealedMessage((e) => writeSealedSnapshot(e, num(r), bytes(r, size(r))));
    default:
      return encodeSealedMessage((e) => writeSealedPresence(e, bytes(r, size(r))));
  }
}

function fuzzFrame(r: Rand): Uint8Array {
  const valid = validFrame(r);
  switch (int(r, 6)) {
    case 0:
    case 1:
      return valid;
    case 2: {
      const flipped = valid.slice();
      for (let i = 0; i < 1 + int(r, 4); i++) if (flipped.length > 0) flipped[int(r, flipped.length)] = int(r, 256);
      return flipped;
    }
    case 3:
      return valid.subarray(0, int(r, valid.length + 1));
    case 4:
      return Uint8Array.from([...valid, ...bytes(r, 1 + int(r, 8))]);
    default:
      // a type byte, then a varint that claims a huge length
      return Uint8Array.from([int(r, 32), 0xff, 0xff, 0xff, 0xff, 0x0f, ...bytes(r, int(r, 16))]);
  }
}

/**
 * Pings after each frame: ws handles frames in order, so the pong means the frame was handled.
 * Both listeners go once either fires: a socket that survives many frames must not collect a
 * 'close' listener per frame (MaxListenersExceededWarning past 10).
 */
async function handled(c: RawSealed): Promise<boolean> {
  if (c.ws.readyState !== c.ws.OPEN) return false;
  return new Promise((done) => {
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      c.ws.off('pong', onPong);
      c.ws.off('close', onClose);
      done(ok);
    };
    const onPong = (): void => finish(true);
    const onClose = (): void => finish(false);
    const timer = setTimeout(() => finish(false), 10_000);
    c.ws.on('pong', onPong);
    c.ws.on('close', onClose);
    c.ws.ping();
  });
}

async function lane(s: TestServer, lane: number, frames: number, closes: Map<number, number>): Promise<void> {
  const r = prng(SEED * 31 + lane);
  const room = `acme-conversation-fuzz${lane % 3}`;
  let c = await RawSealed.connect(s.wsUrl, `/sealed/${room}`);
  // Most lanes say hello first, so the frames reach the open state; some never do.
  if (lane % 4 !== 0) c.hello(0);
  for (let i = 0; i < frames; i++) {
    const frame = fuzzFrame(r);
    // The server may have closed the socket after the previous frame: then this one reconnects.
    if (c.ws.readyState === c.ws.OPEN) {
      c.ws.send(frame);
      if (await handled(c)) continue;
    }
    const code = await c.closed(10_000);
    closes.set(code, (closes.get(code) ?? 0) + 1);
    c = await RawSealed.connect(s.wsUrl, `/sealed/${room}`);
    if (lane % 4 !== 0) c.hello(0);
  }
  c.close();
  await c.closed(5000);
}

async function honestEntries(s: TestServer): Promise<string[]> {
  const c = await RawSealed.connect(s.wsUrl, `/sealed/${HONEST}`);
  c.hello(0);
  const caughtUp = await c.next('caught-up');
  const entries = c.messages.filter((m) => m.type === 'entry').map((m) => Buffer.from((m as { envelope: Uint8Array }).envelope).toString('hex'));
  c.close();
  await c.closed(5000);
  expect(caughtUp.seq).toBe(entries.length);
  return entries;
}

it(`survives ${FRAMES} structure-aware frames on /sealed (seed ${SEED}): refusals only, heap back, an honest room intact`, { timeout: 120_000 + FRAMES * 20 }, async () => {
  const s = await scope.start({ MAX_MESSAGES_PER_SECOND: '100000', PERSIST_FLUSH_MS: '5', LOG_LEVEL: 'warn' });
  const honest = await RawSealed.connect(s.wsUrl, `/sealed/${HONEST}`);
  honest.hello(0);
  await honest.next('caught-up');
  for (let i = 1; i <= 5; i++) honest.update(i, fakeEnvelope([0xaa, i, 0xbb]));
  await honest.wait(() => honest.messages.filter((m) => m.type === 'ack').length === 5, '5 acks');
  honest.close();
  await honest.closed(5000);
  const before = await honestEntries(s);
  expect(before).toHaveLength(5);

  const heapBefore = heapAfterGc();
  const closes = new Map<number, number>();
  await Promise.all(Array.from({ length: LANES }, (_, i) => lane(s, i, Math.ceil(FRAMES / LANES), closes)));

  const unexpected = [...closes.keys()].filter((code) => !ALLOWED_CLOSES.has(code));
  expect(unexpected, `seed ${SEED}: close codes ${JSON.stringify([...closes])}`).toEqual([]);
  expect(await honestEntries(s), `seed ${SEED}`).toEqual(before);
  await expect.poll(() => metricValue(s, 'sealedConnections'), { timeout: 10_000 }).toBe(0);
  const heapGrowth = heapAfterGc() - heapBefore;
  expect(heapGrowth, `seed ${SEED}: heap grew ${heapGrowth} bytes`).toBeLessThan(48 * 1024 * 1024);
});

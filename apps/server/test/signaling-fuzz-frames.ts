/** Frame generators for the signaling fuzz test: seeded, so that a failure can be replayed. */

export type Random = () => number;

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (r: Random, n: number) => Math.floor(r() * n);
const pick = <T>(r: Random, xs: readonly T[]): T => xs[int(r, xs.length)] as T;

const ROOMS = ['fuzz-conversation-1', 'fuzz-conversation-2', 'fuzz-assistant-x', 'fuzz-preference-y'];
const TYPES = ['subscribe', 'unsubscribe', 'publish', 'ping', 'pong', 'announce', '', '__proto__', 'constructor'];

function randomString(r: Random, max: number): string {
  const n = int(r, max);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(r() < 0.9 ? 32 + int(r, 95) : int(r, 0xd7ff));
  return s;
}

function randomJson(r: Random, depth = 0): unknown {
  const k = int(r, depth > 4 ? 5 : 8);
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return r() < 0.5 ? int(r, 1e9) - 5e8 : r() * 1e300;
    case 3: return randomString(r, 40);
    case 4: return pick(r, [...ROOMS, ...TYPES]);
    case 5: return Array.from({ length: int(r, 6) }, () => randomJson(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = int(r, 5); i > 0; i--) o[pick(r, ['type', 'topic', 'topics', 'data', 'clients', 'to', 'from', randomString(r, 8)])] = randomJson(r, depth + 1);
      return o;
    }
  }
}

function validMessage(r: Random): Record<string, unknown> {
  switch (int(r, 4)) {
    case 0: return { type: 'subscribe', topics: ROOMS.filter(() => r() < 0.5) };
    case 1: return { type: 'unsubscribe', topics: ROOMS.filter(() => r() < 0.5) };
    case 2: return { type: 'publish', topic: pick(r, ROOMS), data: randomJson(r) };
    default: return { type: 'ping' };
  }
}

function mutate(r: Random, msg: Record<string, unknown>): Record<string, unknown> {
  const out = { ...msg };
  const keys = ['type', 'topic', 'topics', 'data'];
  for (let i = 1 + int(r, 3); i > 0; i--) {
    const key = pick(r, keys);
    if (r() < 0.3) delete out[key];
    else out[key] = randomJson(r);
  }
  return out;
}

function hugeArray(r: Random): string {
  const n = pick(r, [150, 1000, 5000, 20000]);
  if (r() < 0.5) return JSON.stringify({ type: 'subscribe', topics: Array.from({ length: n }, (_, i) => `fuzz-conversation-${i}`) });
  return JSON.stringify({ type: 'publish', topic: pick(r, ROOMS), data: Array.from({ length: n }, () => int(r, 1000)) });
}

function randomBytes(r: Random): Buffer {
  const n = r() < 0.05 ? 65_000 + int(r, 2000) : int(r, 200);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = int(r, 256);
  return b;
}

/** One frame: text (string) or binary (Buffer), from one of the generator families. */
export function generateFrame(r: Random): string | Buffer {
  const family = int(r, 10);
  if (family === 0) return randomBytes(r);
  if (family === 1) return randomString(r, 300);
  if (family <= 3) return JSON.stringify(randomJson(r));
  if (family <= 6) return JSON.stringify(mutate(r, validMessage(r)));
  if (family === 7) return hugeArray(r);
  const text = JSON.stringify(validMessage(r));
  // Truncated or spliced valid frames hit the JSON error paths.
  return r() < 0.3 ? text.slice(0, int(r, text.length)) : text;
}

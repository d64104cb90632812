/**
 * Fuzzing a live relay: random frames, truncated and mutated real updates, bad awareness. The
 * process must stay up, refusals are 4400, and a room in use keeps exactly its content.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, readRelayMessage, writeRelayAwareness, writeRelayQueryAwareness, writeRelayUpdate } from '@sync-suite/shared';
import { serverPerTest } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { docUntil, metric, RawClient, stockProvider, synced, textOf, type StockProvider } from '../../../test/fixtures/relay-clients.js';

const IN_USE = 'acme-conversation-in-use';
const scope = serverPerTest();
afterEach(() => scope.close());

/** mulberry32: reproducible fuzz input */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function realUpdates(): Uint8Array[] {
  const doc = new Y.Doc();
  const out: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => out.push(u));
  doc.getText('text').insert(0, 'fuzzing the relay with real updates');
  doc.getText('text').delete(3, 5);
  doc.getMap('m').set('k', { nested: [1, 'two', null] });
  doc.getArray('a').push([new Uint8Array([1, 2, 3]), 42, 'x']);
  doc.getXmlFragment('x').insert(0, [new Y.XmlElement('p')]);
  out.push(Y.encodeStateAsUpdate(doc));
  return out;
}

function fuzzFrames(seed: number, count: number): Uint8Array[] {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  const updates = realUpdates();
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const base = updates[int(updates.length)] as Uint8Array;
    switch (i % 6) {
      case 0:
        frames.push(bytes(1 + int(64)));
        break;
      case 1: // a valid header with random payload
        frames.push(Uint8Array.from([int(4), int(3), ...bytes(int(40))]));
        break;
      case 2: // truncated real update
        frames.push(encodeRelayMessage((e) => writeRelayUpdate(e, base.slice(0, int(base.length)))));
        break;
      case 3: {
        const mutated = base.slice();
        for (let k = 0; k < 1 + int(4); k++) mutated[int(mutated.length)] = int(256);
        frames.push(encodeRelayMessage((e) => writeRelayUpdate(e, mutated)));
        break;
      }
      case 4: // awareness with broken JSON or lengths
        frames.push(encodeRelayMessage((e) => writeRelayAwareness(e, Uint8Array.from([1 + int(3), int(200), int(9), 4, 0x7b, ...bytes(int(6))]))));
        break;
      default: // a real update frame, cut anywhere
        const whole = encodeRelayMessage((e) => writeRelayUpdate(e, base));
        frames.push(whole.slice(0, int(whole.length)));
    }
  }
  return frames;
}

/** Could this frame change a document if the server accepted it? Those go to scratch rooms. */
function couldApply(frame: Uint8Array): boolean {
  const decoded = readRelayMessage(frame);
  if (!decoded.ok) return false;
  const m = decoded.message;
  if (m.type !== 'update' && m.type !== 'sync-step2') return false;
  try {
    Y.decodeUpdate(m.update);
    return true;
  } catch {
    return false;
  }
}

/** Sends one frame on a fresh connection; resolves with the close code, or 0 if still open. */
async function probe(wsUrl: string, room: string, frame: Uint8Array): Promise<number> {
  const c = await RawClient.connect(`${wsUrl}/relay/${room}`);
  try {
    await c.next((m) => m.type === 'sync-step1');
    c.send(frame);
    // Messages are handled in order: an answer to this query means the frame was processed.
    c.send(encodeRelayMessage((e) => writeRelayQueryAwareness(e)));
    await withTimeout(
      Promise.race([c.closed(10_000), c.next((m) => m.type === 'awareness', 10_000)]),
      10_000,
      'fuzz frame processed',
    );
    return c.closeCode ?? 0;
  } finally {
    c.close();
  }
}

describe('relay fuzz', () => {
  it('survives random, truncated and mutated input; the room in use keeps exactly its content', async () => {
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '100000' });
    const docs = [new Y.Doc(), new Y.Doc()];
    const providers: StockProvider[] = [stockProvider(3, server.wsUrl, IN_USE, docs[0] as Y.Doc), stockProvider(2, server.wsUrl, IN_USE, docs[1] as Y.Doc)];
    scope.track(...providers, ...docs);
    await Promise.all(providers.map((p) => synced(p)));
    const [a, b] = docs as [Y.Doc, Y.Doc];
    a.getText('text').insert(0, 'exact content');
    b.getMap('m').set('who', 'b');
    await docUntil(a, () => a.getMap('m').get('who') === 'b');
    await docUntil(b, () => textOf(b) === 'exact content');
    const expected = Y.encodeStateAsUpdate(a);

    const frames = fuzzFrames(20240611, 600);
    let refusedInUse = 0;
    let sentInUse = 0;
    for (const [i, frame] of frames.entries()) {
      const room = couldApply(frame) ? `acme-conversation-scratch-${i % 7}` : IN_USE;
      const code = await probe(server.wsUrl, room, frame);
      if (room === IN_USE) {
        sentInUse++;
        if (code === 4400) refusedInUse++;
        else expect(code, `frame ${i} to the room in use`).toBe(0);
      } else {
        expect([0, 4400, 4413, 1012]).toContain(code);
      }
    }
    expect(sentInUse).toBeGreaterThan(300);
    expect(refusedInUse).toBeGreaterThan(200);
    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'relay' })).toBeGreaterThanOrEqual(refusedInUse);

    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    // The stock clients were never disturbed, and a newcomer gets exactly the same document.
    for (const p of providers) expect(p.wsconnected).toBe(true);
    const fresh = new Y.Doc();
    const p = stockProvider(3, server.wsUrl, IN_USE, fresh);
    scope.track(p, fresh);
    await synced(p);
    expect(Y.encodeStateAsUpdate(fresh)).toEqual(expected);
    expect(textOf(fresh)).toBe('exact content');
    expect(fresh.getMap('m').toJSON()).toEqual({ who: 'b' });
  });
});

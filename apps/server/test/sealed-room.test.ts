/** SealedRoom alone: entries reach connections strictly in seq order; a gap is read from storage first. */
import { describe, expect, it } from 'vitest';
import { readSealedServerMessage } from '@sync-suite/shared';
import { SealedRoom, type SealedPeer } from '../src/sealed/room.js';
import type { SealedEntry, SealedRead } from '../src/sealed/store/types.js';

const entry = (seq: number): SealedEntry => ({ seq, envelope: Uint8Array.from([seq]) });

class FakePeer implements SealedPeer {
  readonly seqs: number[] = [];
  readonly sub = '';
  readonly writable = true;
  readonly caughtUp = true;
  constructor(readonly peer: number) {}
  deliver(seq: number, frame: Uint8Array): void {
    const m = readSealedServerMessage(frame);
    if (m.ok && (m.message.type === 'entry' || m.message.type === 'snapshot')) this.seqs.push(seq);
  }
  send(): void {}
  close(): void {}
}

function room(stored: SealedEntry[], head = 0): { room: SealedRoom; reads: number[] } {
  const reads: number[] = [];
  const readAfter = async (_r: string, after: number): Promise<SealedRead> => {
    reads.push(after);
    return { snapshot: null, entries: stored.filter((e) => e.seq > after), head: stored.at(-1)?.seq ?? 0, generation: 0 };
  };
  return { room: new SealedRoom('r', head, 0, { readAfter, snapshotAfter: 1000, onGapFillFailed: () => undefined, onGenerationMoved: () => undefined }), reads };
}

describe('SealedRoom ordering', () => {
  it('delivers in order, skips duplicates, and fills a gap from storage before going on', async () => {
    const stored = [1, 2, 3, 4, 5].map(entry);
    const { room: r, reads } = room(stored);
    const p = new FakePeer(1);
    r.join(p);
    r.deliver([entry(1), entry(2)]);
    r.deliver([entry(2)]); // duplicate (e.g. from Redis after a local commit)
    r.deliver([entry(5)]); // 3 and 4 were lost on the way
    expect(p.seqs).toEqual([1, 2]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads).toEqual([2]);
    expect(p.seqs).toEqual([1, 2, 3, 4, 5]);
    expect(r.head).toBe(5);
  });
});

describe('SealedRoom presence', () => {
  it('a joiner gets every live presence, but not that of another instance\'s peer gone silent past the awareness timeout', () => {
    const { room: r } = room([]);
    const local = new FakePeer(1);
    r.join(local);
    r.setPresence(1, Uint8Array.from([1]), 0); // local, connected: kept until it leaves
    r.setPresence(2, Uint8Array.from([2]), 0); // remote, its instance died without a peer-left
    r.setPresence(3, Uint8Array.from([3]), 20_000); // remote, renewed recently
    const peers = r.presenceFrames(99, 40_000).map((f) => {
      const m = readSealedServerMessage(f);
      return m.ok && m.message.type === 'presence' ? m.message.peer : -1;
    });
    expect(peers).toEqual([1, 3]);
    expect([...r.presence.keys()]).toEqual([1, 3]);
  });
});

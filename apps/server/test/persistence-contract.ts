/**
 * The DocStore contract, run against every engine. To add an engine:
 *   describeDocStoreContract('postgres', () => new PostgresStore(url), cleanup?)
 */
import { describe, expect, it } from 'vitest';
import { useStores } from './store-harness.js';
import * as Y from 'yjs';
import { mergeStoredRoom } from '../src/relay/persistence/merge.js';
import type { DocStore } from '../src/relay/persistence/types.js';

export function describeDocStoreContract(name: string, factory: () => DocStore | Promise<DocStore>): void {
  describe(`DocStore contract: ${name}`, () => {
    const { make, open, room } = useStores(factory);

    it('throws when used before init', async () => {
      const s = await make();
      await expect(s.load('x')).rejects.toThrow(/before init/);
      await expect(s.append([{ room: 'x', updates: [new Uint8Array([0, 0])] }])).rejects.toThrow(/before init/);
      await expect(s.check()).rejects.toThrow();
    });

    it('loads an unknown room as empty', async () => {
      const s = await open();
      expect(await s.load(room())).toEqual({ snapshot: null, snapshotSeq: 0, updates: [], lastSeq: 0 });
      await s.check();
    });

    it('appends a batch for several rooms at once, in order, with growing sequence numbers', async () => {
      const s = await open();
      const [a, b] = [room(), room()];
      await s.append([
        { room: a, updates: [bytes(1), bytes(2)] },
        { room: b, updates: [bytes(3)] },
      ]);
      await s.append([{ room: a, updates: [bytes(4)] }]);
      const la = await s.load(a);
      const lb = await s.load(b);
      expect(la.updates.map((u) => u[0])).toEqual([1, 2, 4]);
      expect(lb.updates.map((u) => u[0])).toEqual([3]);
      expect(la.lastSeq).toBeGreaterThan(lb.lastSeq);
    });

    it('compacts only up to the sequence number it was given, keeping later appends', async () => {
      const s = await open();
      const r = room();
      const doc = new Y.Doc();
      const updates: Uint8Array[] = [];
      doc.on('update', (u: Uint8Array) => updates.push(u));
      doc.getText('t').insert(0, 'abc');
      doc.getText('t').insert(3, 'def');
      await s.append([{ room: r, updates: updates.splice(0) }]);
      const seen = await s.load(r);
      // Another instance appends after we read: compaction must not drop it.
      doc.getText('t').insert(6, 'ghi');
      await s.append([{ room: r, updates: updates.splice(0) }]);
      await s.compact(r, mergeStoredRoom(seen), seen.lastSeq);
      const after = await s.load(r);
      expect(after.snapshot).not.toBeNull();
      expect(after.snapshotSeq).toBe(seen.lastSeq);
      expect(after.updates).toHaveLength(1);
      expect(textOf(after)).toBe('abcdefghi');
      // An older compaction arriving late is a no-op.
      await s.compact(r, mergeStoredRoom({ ...seen, updates: seen.updates.slice(0, 1) }), seen.lastSeq - 1);
      expect(textOf(await s.load(r))).toBe('abcdefghi');
      // Compacting everything leaves a snapshot and an empty tail.
      const all = await s.load(r);
      await s.compact(r, mergeStoredRoom(all), all.lastSeq);
      const final = await s.load(r);
      expect(final.updates).toHaveLength(0);
      expect(final.lastSeq).toBe(all.lastSeq);
      expect(textOf(final)).toBe('abcdefghi');
    });

    it('keeps sequence numbers growing after compaction', async () => {
      const s = await open();
      const r = room();
      await s.append([{ room: r, updates: [update('a')] }]);
      const first = await s.load(r);
      await s.compact(r, mergeStoredRoom(first), first.lastSeq);
      await s.append([{ room: r, updates: [update('b', 2)] }]);
      const next = await s.load(r);
      expect(next.lastSeq).toBeGreaterThan(first.lastSeq);
      expect(next.updates).toHaveLength(1);
    });

    it('throws after close', async () => {
      const s = await open();
      await s.close();
      await expect(s.load('x')).rejects.toThrow();
    });
  });
}

function bytes(n: number): Uint8Array {
  return new Uint8Array([n, 0, 0]);
}

function update(text: string, client = 1): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = client;
  doc.getText('t').insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

function textOf(stored: Parameters<typeof mergeStoredRoom>[0]): string {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, mergeStoredRoom(stored));
  return doc.getText('t').toString();
}

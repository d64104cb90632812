/** The sealed outbox stays bounded when the server never acknowledges (withheld or lost acks). */
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { MAX_INFLIGHT, Outbox } from '../src/sealed/outbox.js';

describe('sealed outbox', () => {
  it('stops sending past MAX_INFLIGHT unacked updates and merges what waits; an ack opens the window, a reconnect resends everything', () => {
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => updates.push(u));
    const box = new Outbox();
    for (let i = 0; i < MAX_INFLIGHT * 3; i++) {
      doc.getText('t').insert(i, 'x');
      box.add(updates[updates.length - 1] as Uint8Array);
      box.take();
    }
    expect(box.take()).toBeNull();
    expect(box.pending).toBeLessThanOrEqual(MAX_INFLIGHT + 1);
    box.acked(1);
    const next = box.take();
    expect(next).not.toBeNull();
    box.requeue();
    const all = box.take();
    // the server holds the acked first update; the resend carries everything else
    const mirror = new Y.Doc();
    Y.applyUpdate(mirror, updates[0] as Uint8Array);
    Y.applyUpdate(mirror, all?.update as Uint8Array);
    expect(mirror.getText('t').toString()).toBe(doc.getText('t').toString());
  });

  it('merges only up to its cap; an update over it stays (handed out once), later ones go without a mark', () => {
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => updates.push(u));
    const box = new Outbox(1000);
    const add = (text: string, mark: number): void => {
      doc.getText('t').insert(0, text);
      box.add(updates[updates.length - 1] as Uint8Array, { pending: mark });
    };
    for (let i = 0; i < 10; i++) add('y'.repeat(300), i + 1);
    const first = box.take();
    expect(first?.update.byteLength).toBeLessThanOrEqual(1000);
    expect(first?.mark?.pending).toBeGreaterThanOrEqual(1);
    while (box.take()) {
      // drain what fits
    }
    add('z'.repeat(5000), 11);
    add('a', 12);
    expect(box.oversized().map((u) => u.byteLength > 1000)).toEqual([true]);
    expect(box.oversized()).toEqual([]);
    const after = box.take();
    expect(after?.update.byteLength).toBeLessThan(1000);
    // an earlier update still waits: this envelope's ack proves nothing about it
    expect(after?.mark).toBeUndefined();
    expect(box.take()).toBeNull();
    expect(box.pending).toBeGreaterThanOrEqual(1);
  });

  it('a requeued update added after one over the cap is handed out again without a mark (its ack must not confirm the big one)', () => {
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => updates.push(u));
    const box = new Outbox(1000);
    doc.getText('t').insert(0, 'z'.repeat(5000));
    box.add(updates[updates.length - 1] as Uint8Array, { pending: 1 });
    doc.getText('t').insert(0, 'a');
    box.add(updates[updates.length - 1] as Uint8Array, { pending: 2 });
    const first = box.take();
    expect(first?.mark).toBeUndefined();
    box.requeue(); // the socket dropped before the ack
    const again = box.take();
    expect(again).not.toBeNull();
    expect(box.blocked).toBe(true);
    expect(again?.mark).toBeUndefined();
    // once the cap allows the big one, the next envelope (both, in order) carries the mark
    box.requeue();
    box.maxUpdateBytes = 100_000;
    const all = box.take();
    expect(all?.mark).toEqual({ pending: 2 });
  });

  it('after a 1009 the pieces of a merged in-flight envelope are sent again under the lower cap, not stranded as one oversized blob', () => {
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => updates.push(u));
    const box = new Outbox(1_000_000);
    for (let i = 0; i < 10; i++) {
      doc.getText('t').insert(0, 'y'.repeat(5000));
      box.add(updates[updates.length - 1] as Uint8Array, { pending: i + 1 });
    }
    const merged = box.take();
    expect(merged?.update.byteLength).toBeGreaterThan(40_000);
    box.requeue(); // closed 1009: the cap drops below the merged envelope
    box.maxUpdateBytes = 20_000;
    expect(box.oversized()).toEqual([]);
    expect(box.blocked).toBe(false);
    const mirror = new Y.Doc();
    const marks: Array<number | undefined> = [];
    for (let t = box.take(); t; t = box.take()) {
      expect(t.update.byteLength).toBeLessThanOrEqual(20_000);
      Y.applyUpdate(mirror, t.update);
      marks.push(t.mark?.pending);
      box.acked(t.id);
    }
    expect(mirror.getText('t').toString()).toBe(doc.getText('t').toString());
    expect(marks.at(-1)).toBe(10);
    expect(box.pending).toBe(0);
  });
});

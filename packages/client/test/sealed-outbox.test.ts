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
});

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
});

/**
 * When a room's log is folded (relay/compaction-due.ts): every COMPACT_AFTER_UPDATES entries while
 * the snapshot is small; for a large snapshot, only once the log weighs 1/16 of it or holds twice
 * COMPACT_AFTER_UPDATES entries. Real server (SQLite), raw relay clients, the registry's
 * 'compacted' events.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { compactionDue, LOG_SHARE, MAX_LOG_FACTOR } from '../src/relay/compaction-due.js';
import { SqliteStore } from '../src/relay/persistence/sqlite.js';
import { serverPerTest } from '../../../test/helpers/server.js';
import { RawClient } from '../../../test/fixtures/relay-clients.js';

const scope = serverPerTest();
afterEach(() => scope.close());

describe('compactionDue', () => {
  it('waits for COMPACT_AFTER_UPDATES entries, then for a share of the snapshot or the entry cap', () => {
    expect(compactionDue({ entries: 499, bytes: 1e9 }, 0, 500)).toBe(false);
    expect(compactionDue({ entries: 500, bytes: 10_000 }, 0, 500)).toBe(true);
    expect(compactionDue({ entries: 500, bytes: 10_000 }, 10_000 * LOG_SHARE, 500)).toBe(true);
    expect(compactionDue({ entries: 500, bytes: 10_000 }, 10_000 * LOG_SHARE + 1, 500)).toBe(false);
    expect(compactionDue({ entries: 500 * MAX_LOG_FACTOR, bytes: 1 }, 1e9, 500)).toBe(true);
  });
});

describe('relay compaction of a large room', () => {
  it('folds a log of small updates once it holds 2 x COMPACT_AFTER_UPDATES entries, and a heavier one once it weighs 1/16 of the snapshot', async () => {
    const server = await scope.start({ COMPACT_AFTER_UPDATES: '4', PERSIST_FLUSH_MS: '10' });
    const registry = server.app.relayRooms;
    if (!registry) throw new Error('no relay');
    const room = 'acme-conversation-large';
    const folds: number[] = [];
    registry.on('compacted', (name: string, folded: number) => {
      if (name === room) folds.push(folded);
    });
    const writer = await RawClient.connect(`${server.wsUrl}/relay/${room}`);
    const reader = await RawClient.connect(`${server.wsUrl}/relay/${room}`);
    scope.track(writer, reader);
    await Promise.all([writer, reader].map((c) => c.next((m) => m.type === 'sync-step1', 5000, 'sync step 1')));
    const doc = new Y.Doc();
    const text = doc.getText('t');
    const pending: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => pending.push(encodeRelayMessage((e) => writeRelayUpdate(e, u))));
    let sent = 0;
    const send = async (edits: number, edit: (i: number) => void): Promise<void> => {
      for (let i = 0; i < edits; i++) edit(i);
      for (const u of pending.splice(0)) (writer.send(u), sent++);
      await reader.next(() => reader.messages.filter((m) => m.type === 'update').length === sent, 5000, `${sent} updates relayed`);
      await registry.drain();
    };
    /** Resolves once `done` holds after a 'compacted' event (or already does); rejects after 5 s. */
    const compacted = (done: () => boolean, what: string): Promise<void> =>
      new Promise((resolve, reject) => {
        if (done()) return resolve();
        const timer = setTimeout(() => (registry.off('compacted', check), reject(new Error(`timed out waiting for ${what}; folds ${JSON.stringify(folds)}`))), 5000);
        function check(): void {
          if (!done()) return;
          clearTimeout(timer);
          registry?.off('compacted', check);
          resolve();
        }
        registry.on('compacted', check);
      });
    const foldOf = (n: number): Promise<void> => compacted(() => folds.some((f) => f >= n), `a compaction folding ${n} entries`);

    // A 60 kB message and three small ones: the snapshot is empty, so 4 entries are due.
    await send(1, () => text.insert(0, 'x'.repeat(60_000)));
    await send(3, (i) => text.insert(0, `m${i}`));
    await foldOf(4);
    expect(folds).toEqual([4]);
    // 8 small updates (some 25 B each, far under 1/16 of 60 kB): folded at 8 entries, not at 4.
    await send(3, (i) => text.insert(0, `s${i}`));
    await send(3, (i) => text.insert(0, `t${i}`));
    expect(folds).toEqual([4]);
    await send(2, (i) => text.insert(0, `u${i}`));
    await foldOf(8);
    expect(folds).toEqual([4, 8]);
    // Four updates of 1.2 kB: the log weighs more than 1/16 of the snapshot, folded at 4 entries.
    await send(4, (i) => text.insert(0, String(i).repeat(1200)));
    await compacted(() => folds.length === 3, 'a third compaction');
    expect(folds).toEqual([4, 8, 4]);
    expect(writer.closeCode).toBeNull();
  });
});

describe('relay shutdown', () => {
  it('folds the logs of open rooms holding COMPACT_AFTER_UPDATES entries or more, so the next load reads a snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relay-fold-at-close-'));
    try {
      const server = await scope.start({ COMPACT_AFTER_UPDATES: '4', PERSIST_FLUSH_MS: '10', STORAGE: 'sqlite', DATA_DIR: dir });
      const registry = server.app.relayRooms;
      if (!registry) throw new Error('no relay');
      const room = 'acme-conversation-closing';
      const writer = await RawClient.connect(`${server.wsUrl}/relay/${room}`);
      const reader = await RawClient.connect(`${server.wsUrl}/relay/${room}`);
      scope.track(writer, reader);
      await Promise.all([writer, reader].map((c) => c.next((m) => m.type === 'sync-step1', 5000, 'sync step 1')));
      const doc = new Y.Doc();
      doc.on('update', (u: Uint8Array) => writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, u))));
      const relayed = (n: number): Promise<unknown> => reader.next(() => reader.messages.filter((m) => m.type === 'update').length === n, 5000, `${n} updates relayed`);
      const folded = new Promise<void>((resolve) => registry.once('compacted', () => resolve()));
      doc.getText('t').insert(0, 'x'.repeat(60_000));
      for (let i = 0; i < 3; i++) doc.getText('t').insert(0, `m${i}`);
      await relayed(4);
      await registry.drain();
      await folded; // the 60 kB snapshot
      // 6 small updates: not due (under 1/16 of the snapshot, under 2 x 4 entries).
      for (let i = 0; i < 6; i++) doc.getText('t').insert(0, `s${i}`);
      await relayed(10);
      await server.close();
      const after = new SqliteStore(dir);
      await after.init();
      try {
        const stored = await after.load(room);
        expect(stored.updates).toHaveLength(0);
        const loaded = new Y.Doc();
        Y.applyUpdate(loaded, stored.snapshot as Uint8Array);
        expect(loaded.getText('t').toString()).toBe(doc.getText('t').toString());
      } finally {
        await after.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

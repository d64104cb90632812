import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import Database from 'better-sqlite3';
import pino from 'pino';
import * as Y from 'yjs';
import { createServerMetrics } from '@sync-suite/shared/node';
import { FlushQueue } from '../src/relay/persistence/flush-queue.js';
import { MemoryStore } from '../src/relay/persistence/memory.js';
import { SqliteStore } from '../src/relay/persistence/sqlite.js';
import { SqliteSealedStore } from '../src/sealed/store/sqlite.js';
import { SqliteThreads } from '../src/storage/sqlite-thread.js';
import type { AppendBatch, DocStore } from '../src/relay/persistence/types.js';
import { createDocStore } from '../src/relay/persistence/create-store.js';
import { COMMIT_HISTORY, type CommitWindow } from '../src/storage/group-commit.js';
import { LocalFanout, type RoomFanout } from '../src/relay/fanout.js';
import { RoomRegistry } from '../src/relay/room-registry.js';
import { describeDocStoreContract } from './persistence-contract.js';
import { until } from '../../../test/fixtures/relay-clients.js';

/** The storage thread's worker behind a store (storage/sqlite-thread.ts), null when it has none. */
const workerOf = (store: SqliteStore | SqliteSealedStore): Worker | null =>
  (store as unknown as { thread: { shared: { thread: { worker: Worker | null } } | null } }).thread.shared?.thread.worker ?? null;

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'relay-store-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describeDocStoreContract('memory', () => new MemoryStore(), async (store, room, edit) => {
  const stored = (store as unknown as { rooms: Map<string, { snapshot: Uint8Array }> }).rooms.get(room);
  if (stored) stored.snapshot = edit(stored.snapshot);
});
describeDocStoreContract('sqlite', () => new SqliteStore(tempDir()), async (store, room, edit) => {
  // A second connection to the file, as anything else writing to the disk would be.
  const db = new Database(store.file);
  try {
    const row = db.prepare<[string], { snapshot: Buffer }>('SELECT snapshot FROM relay_snapshots WHERE room = ?').get(room);
    if (row) db.prepare('UPDATE relay_snapshots SET snapshot = ? WHERE room = ?').run(edit(new Uint8Array(row.snapshot)), room);
  } finally {
    db.close();
  }
}, (store) => new SqliteStore(dirname(store.file)));

describe('sqlite engine', () => {
  it('uses WAL and keeps data across reopen', async () => {
    const dir = tempDir();
    const a = new SqliteStore(dir);
    await a.init();
    await a.append([{ room: 'r', updates: [new Uint8Array([1, 2, 3])] }]);
    await a.close();
    const b = new SqliteStore(dir);
    await b.init();
    expect((await b.load('r')).updates).toEqual([new Uint8Array([1, 2, 3])]);
    await b.close();
    const db = new Database(b.file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('a file from before room generations opens with its rooms in generation 0, which a purge moves on', async () => {
    const dir = tempDir();
    const a = new SqliteStore(dir);
    await a.init();
    await a.append([{ room: 'r', updates: [new Uint8Array([1, 2, 3])] }]);
    await a.close();
    const old = new Database(a.file);
    old.exec('DROP TABLE relay_generations'); // as the version before this one left the file
    old.close();
    const b = new SqliteStore(dir);
    await b.init();
    try {
      expect(await b.load('r')).toMatchObject({ updates: [new Uint8Array([1, 2, 3])], generation: 0 });
      expect(await b.append([{ room: 'r', updates: [new Uint8Array([4])], generation: 0 }])).toEqual([]);
      await b.purgeRoom('r');
      expect(await b.append([{ room: 'r', updates: [new Uint8Array([5])], generation: 0 }])).toEqual(['r']);
      expect(await b.load('r')).toMatchObject({ updates: [], generation: 1 });
    } finally {
      await b.close();
    }
  });

  it('a storage thread that dies fails the calls it had, instead of hanging, and the next call starts a new one', async () => {
    const dir = tempDir();
    const threads = new SqliteThreads();
    const store = new SqliteStore(dir, threads);
    const sealed = new SqliteSealedStore(dir, threads);
    await store.init();
    await sealed.init();
    await store.append([{ room: 'r', updates: [new Uint8Array([1])] }]);
    const thread = workerOf(store) as Worker;
    const gone = new Promise((r) => thread.once('exit', r));
    // A call in flight when the thread dies fails with the thread's exit. Made once the end is
    // asked for: made before, a quick thread could answer it first (a full-suite run saw that).
    const dying = thread.terminate();
    const inFlight = store.check();
    await dying;
    await gone;
    await expect(inFlight).rejects.toThrow(/storage thread exited/);
    // The revival interval is read from Date (storage/sqlite-thread.ts): frozen from before the
    // revival below, so that the second death falls within it however long the steps between take
    // (more than the interval on a loaded machine: the check below then started a thread).
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      // The next call gets a new thread on the same file, and nothing stored is lost.
      await store.append([{ room: 'r', updates: [new Uint8Array([2])] }]);
      const revived = workerOf(store) as Worker;
      expect(revived).not.toBe(thread);
      expect(revived.threadId).toBeGreaterThan(0);
      expect((await store.load('r')).updates).toEqual([new Uint8Array([1]), new Uint8Array([2])]);
      await store.check();
      // The sealed tables, on the same dead thread, join the new one instead of starting another.
      await sealed.check();
      expect(workerOf(sealed)).toBe(revived);
      // A second death within the revival interval: calls fail (no thread per call) until it has passed.
      const again = new Promise((r) => revived.once('exit', r));
      await revived.terminate();
      await again;
      await expect(store.check()).rejects.toThrow(/storage thread exited/);
      vi.setSystemTime(Date.now() + 5000);
      await store.check();
      expect(workerOf(store)).not.toBe(revived);
    } finally {
      vi.useRealTimers();
    }
    await sealed.close();
    await store.close();
  });

  it('the relay and sealed tables of one file share one storage thread, which ends with the last engine closed', async () => {
    const dir = tempDir();
    const threads = new SqliteThreads(); // one server's, as app.ts makes it
    const relay = new SqliteStore(dir, threads);
    const sealed = new SqliteSealedStore(dir, threads);
    await Promise.all([relay.init(), sealed.init()]);
    const worker = workerOf(relay) as Worker;
    expect(worker).not.toBeNull();
    expect(workerOf(sealed)).toBe(worker);
    await relay.append([{ room: 'r', updates: [new Uint8Array([1])] }]);
    await relay.close();
    // The relay's calls are refused once it closed; the sealed tables still answer on the same thread.
    await expect(relay.load('r')).rejects.toThrow(/after close/);
    expect(await sealed.append([{ room: 's', envelopes: [new Uint8Array([2])] }])).toEqual([1]);
    expect(workerOf(sealed)).toBe(worker);
    expect(worker.threadId).toBeGreaterThan(0);
    await sealed.close();
    // a terminated worker's threadId is -1
    expect(worker.threadId).toBe(-1);
    // A later start gets a thread of its own and sees what both wrote.
    const again = new SqliteStore(dir, threads);
    await again.init();
    expect(workerOf(again)).not.toBe(worker);
    expect((await again.load('r')).updates).toEqual([new Uint8Array([1])]);
    await again.close();
  });

  it('refuses to start when the file cannot be opened, naming the error', async () => {
    // DATA_DIR below a regular file: no directory can be made there.
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, '');
    const store = new SqliteStore(join(file, 'data'));
    await expect(store.init()).rejects.toThrow(/ENOTDIR|EEXIST/);
    await expect(store.check()).rejects.toThrow(/before init/);
  });

  it('STORAGE=postgres selects the PostgreSQL engine (contract: postgres.test.ts)', () => {
    expect(() => createDocStore({ STORAGE: 'postgres', DATA_DIR: '.' })).toThrow(/DATABASE_URL/);
    expect(createDocStore({ STORAGE: 'postgres', DATA_DIR: '.', DATABASE_URL: 'postgres://h/db' }).engine).toBe('postgres');
  });
});

/** A store that records each append (one call = one transaction) and can be told to fail. */
class RecordingStore extends MemoryStore {
  appends: AppendBatch[][] = [];
  failNext = 0;
  override async append(batches: readonly AppendBatch[]): Promise<string[]> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('disk full');
    }
    this.appends.push(batches.map((b) => ({ room: b.room, updates: [...b.updates], ...(b.generation !== undefined ? { generation: b.generation } : {}) })));
    return super.append(batches);
  }
}

function queueFor(store: DocStore, flushMs = 30) {
  const metrics = createServerMetrics();
  const committed: Array<[string, number]> = [];
  const events = new EventEmitter();
  const queue = new FlushQueue(store, {
    flushMs,
    metrics,
    log: pino({ level: 'silent' }),
    onCommitted: (room, updates) => {
      committed.push([room, updates.length]);
      events.emit('committed');
    },
    retryMs: 10,
  });
  return { queue, metrics, committed, events };
}

describe('group commit (FlushQueue)', () => {
  it('commits every update accepted in one window in a single transaction, on its own timer', async () => {
    const store = new RecordingStore();
    await store.init();
    const { queue, metrics, committed, events } = queueFor(store);
    for (let i = 0; i < 100; i++) queue.enqueue(i % 2 ? 'a' : 'b', new Uint8Array([i]));
    await until(events as never, 'committed', () => committed.length >= 2, 5000, 'timer commit');
    expect(store.appends).toHaveLength(1);
    expect(store.appends[0]?.flatMap((b) => b.updates)).toHaveLength(100);
    expect(committed.sort()).toEqual([
      ['a', 50],
      ['b', 50],
    ]);
    const hist = await metrics.relayPersistSeconds.get();
    expect(hist.values.find((v) => v.metricName === 'sync_relay_persist_seconds_count')?.value).toBe(1);
    queue.close();
  });

  it('names each room\'s generation; a room refused for it goes to onFenced, never retried, while the rest of the commit is stored', async () => {
    const store = new RecordingStore();
    await store.init();
    await store.purgeRoom('deleted'); // generation 1 now: updates accepted in generation 0 are refused
    const fenced: Array<[string, number | undefined, number]> = [];
    const committed: string[] = [];
    const queue = new FlushQueue(store, {
      flushMs: 30,
      metrics: createServerMetrics(),
      log: pino({ level: 'silent' }),
      onCommitted: (room) => committed.push(room),
      onFenced: (room, generation, updates) => fenced.push([room, generation, updates.length]),
      retryMs: 10,
    });
    queue.enqueue('kept', new Uint8Array([1]), 0);
    queue.enqueue('deleted', new Uint8Array([2]), 0);
    queue.enqueue('deleted', new Uint8Array([3]), 0);
    await queue.flush();
    expect(store.appends[0]?.map((b) => [b.room, b.generation])).toEqual([
      ['kept', 0],
      ['deleted', 0],
    ]);
    expect(committed).toEqual(['kept']);
    expect(fenced).toEqual([['deleted', 0, 2]]);
    expect(queue.hasPending('deleted')).toBe(false);
    expect((await store.load('deleted')).updates).toEqual([]);
    expect((await store.load('kept')).updates).toEqual([new Uint8Array([1])]);
    // the room's next life, named in its own generation, is stored
    queue.enqueue('deleted', new Uint8Array([4]), 1);
    await queue.flush();
    expect((await store.load('deleted')).updates).toEqual([new Uint8Array([4])]);
    expect(store.appends).toHaveLength(2);
    queue.close();
  });

  /** A store whose first append waits for `release()`, then fails (a connection lost mid-commit). */
  class FailingOnceStore extends RecordingStore {
    release!: () => void;
    /** resolves once the first append is under way */
    readonly writing: Promise<void>;
    private gate: Promise<void> | null = new Promise((r) => (this.release = r));
    private started!: () => void;
    constructor() {
      super();
      this.writing = new Promise((r) => (this.started = r));
    }
    override async append(batches: readonly AppendBatch[]): Promise<string[]> {
      const gate = this.gate;
      if (!gate) return super.append(batches);
      this.gate = null;
      this.appends.push(batches.map((b) => ({ ...b })));
      this.started();
      await gate;
      throw new Error('connection reset');
    }
  }

  it('keeps each update\'s generation through a failed commit: a room deleted meanwhile is never written unnamed', async () => {
    const store = new FailingOnceStore();
    await store.init();
    const fenced: Array<[string, number | undefined, number]> = [];
    const queue = new FlushQueue(store, {
      flushMs: 30,
      metrics: createServerMetrics(),
      log: pino({ level: 'silent' }),
      onFenced: (room, generation, updates) => fenced.push([room, generation, updates.length]),
      retryMs: 10,
    });
    queue.enqueue('r', new Uint8Array([1]), 0); // accepted in generation 0
    const first = queue.flush('r').catch((err: unknown) => String(err)); // being written; fails
    const loader = queue.flush('r').catch((err: unknown) => String(err)); // a load of the room waits for it (relay/room-loader.ts)
    await store.writing;
    // the room is deleted on another instance (storage moves on), then here (room-registry.ts purgeNow)
    await store.purgeRoom('r');
    queue.discard('r');
    const purged = queue.idle().then(() => queue.discard('r'));
    store.release();
    expect(await first).toContain('connection reset');
    await Promise.all([loader, purged]);
    await queue.flush();
    // every write of the room named generation 0: refused, nothing stored
    expect(store.appends.flat().map((b) => [b.room, b.generation])).not.toContainEqual(['r', undefined]);
    expect((await store.load('r')).updates).toEqual([]);
    expect(fenced).toEqual([['r', 0, 1]]);
    queue.close();
  });

  it('never writes a batch of mixed generations: updates of an older one are left out, and discard(room, before) drops only those', async () => {
    const store = new FailingOnceStore();
    await store.init();
    const committed: Array<[string, number[]]> = [];
    const queue = new FlushQueue(store, {
      flushMs: 30,
      metrics: createServerMetrics(),
      log: pino({ level: 'silent' }),
      onCommitted: (room, updates) => committed.push([room, updates.map((u) => u[0]!)]),
      retryMs: 10,
    });
    queue.enqueue('r', new Uint8Array([1]), 0);
    const first = queue.flush('r').catch((err: unknown) => String(err));
    await store.writing;
    await store.purgeRoom('r');
    // the room loaded again, in generation 1, while generation 0's update was being written
    queue.enqueue('r', new Uint8Array([2]), 1);
    store.release();
    expect(await first).toContain('connection reset');
    await queue.flush();
    expect(store.appends.at(-1)?.map((b) => [b.room, b.generation, b.updates.map((u) => u[0])])).toEqual([['r', 1, [2]]]);
    expect(committed).toEqual([['r', [2]]]);
    expect((await store.load('r')).updates).toEqual([new Uint8Array([2])]);
    // a delete heard with generation 2 drops what was accepted before it, keeps the rest
    queue.enqueue('r', new Uint8Array([3]), 1);
    queue.enqueue('r', new Uint8Array([4]), 2);
    expect(queue.discard('r', 2)).toEqual([new Uint8Array([3])]);
    expect(queue.size).toBe(1);
    expect(queue.discard('r')).toEqual([new Uint8Array([4])]);
    expect(queue.hasPending('r')).toBe(false);
    queue.close();
  });

  it('keeps updates in order when a commit fails, retries, and counts the error', async () => {
    const store = new RecordingStore();
    await store.init();
    store.failNext = 1;
    const { queue, metrics } = queueFor(store);
    queue.enqueue('r', new Uint8Array([1]));
    await expect(queue.flush()).rejects.toThrow('disk full');
    queue.enqueue('r', new Uint8Array([2]));
    await queue.flush();
    expect((await store.load('r')).updates.map((u) => u[0])).toEqual([1, 2]);
    expect((await metrics.storageErrors.get()).values[0]?.value).toBe(1);
    expect(queue.size).toBe(0);
    queue.close();
  });

  it('flush() waits for a commit already under way and then commits the rest', async () => {
    const store = new RecordingStore();
    await store.init();
    const { queue } = queueFor(store, 1000);
    queue.enqueue('r', Y.encodeStateVector(new Y.Doc()));
    const first = queue.flush();
    queue.enqueue('r', new Uint8Array([9]));
    await Promise.all([first, queue.flush()]);
    expect(store.appends).toHaveLength(2);
    expect((await store.load('r')).updates).toHaveLength(2);
    queue.close();
  });

  /** A queue on a clock of the test's: each commit takes `commit.ms` of it. */
  function clockedQueue(window: CommitWindow) {
    const clock = { t: 0 };
    const commit = { ms: 4 };
    class TimedStore extends RecordingStore {
      override async append(batches: readonly AppendBatch[]): Promise<string[]> {
        clock.t += commit.ms;
        return super.append(batches);
      }
    }
    const store = new TimedStore();
    const queue = new FlushQueue(store, { flushMs: 100, metrics: createServerMetrics(), log: pino({ level: 'silent' }), window, now: () => clock.t });
    const commitOnce = async (ms: number): Promise<void> => {
      commit.ms = ms;
      queue.enqueue('r', new Uint8Array([1]));
      await queue.flush();
    };
    return { store, queue, clock, commitOnce };
  }

  it("a 'bound' window lasts PERSIST_FLUSH_MS minus the slowest of the last commits and a tenth (half until one is timed)", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { store, queue, commitOnce } = clockedQueue('bound');
      await store.init();
      expect(queue.window).toBe('bound');
      expect(queue.windowMs).toBe(50);
      await commitOnce(4);
      expect(queue.windowMs).toBe(100 - 4 - 10);
      // The timer: nothing is committed before the window's end, everything at it.
      queue.enqueue('r', new Uint8Array([2]));
      await vi.advanceTimersByTimeAsync(85);
      expect(store.appends).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(store.appends).toHaveLength(2);
      // A slow commit shortens the windows (below half) until COMMIT_HISTORY faster ones follow it.
      await commitOnce(70);
      expect(queue.windowMs).toBe(20);
      for (let i = 0; i < COMMIT_HISTORY - 1; i++) await commitOnce(4);
      expect(queue.windowMs).toBe(20);
      await commitOnce(4);
      expect(queue.windowMs).toBe(86);
      // Slower than the bound itself: the next commit starts as soon as the window opens.
      await commitOnce(150);
      expect(queue.windowMs).toBe(0);
      queue.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it("a 'half' window is half of PERSIST_FLUSH_MS whatever the commits take", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { store, queue, commitOnce } = clockedQueue('half');
      await store.init();
      await commitOnce(4);
      expect(queue.windowMs).toBe(50);
      queue.enqueue('r', new Uint8Array([2]));
      await vi.advanceTimersByTimeAsync(49);
      expect(store.appends).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(store.appends).toHaveLength(2);
      await commitOnce(70);
      expect(queue.windowMs).toBe(50);
      queue.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it("the relay's window: 'bound' when nothing waits for the commit, 'half' when other instances do", async () => {
    const base = { store: new MemoryStore(), metrics: createServerMetrics(), log: pino({ level: 'silent' }), flushMs: 50, idleMs: 60_000, compactAfter: 500, maxPeersPerRoom: 50 };
    const local = new RoomRegistry({ ...base, fanout: new LocalFanout() });
    expect(local.persist.window).toBe('bound');
    const shared: RoomFanout = Object.assign(new LocalFanout(), { awaitsCommit: true });
    const cluster = new RoomRegistry({ ...base, fanout: shared });
    expect(cluster.persist.window).toBe('half');
    await Promise.all([local.close(), cluster.close()]);
  });
});

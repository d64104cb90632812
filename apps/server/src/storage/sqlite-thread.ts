/**
 * The storage thread running DATA_DIR's SQLite file (better-sqlite3, synchronous), seen from the
 * event loop: calls go out as messages and come back as promises, in the order made. A commit
 * with synchronous=FULL waits for fsync; on the event loop that wait would delay every update in
 * flight. Both SQLite engines (relay/persistence/sqlite.ts, sealed/store/sqlite.ts) reach their
 * tables through a SqliteTables, and share one thread per file (its worker side:
 * sqlite-worker.ts): the thread starts with the first engine and ends with the last.
 */
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { StoreNotReadyError } from '../relay/persistence/types.js';
import type { ThreadReply } from './sqlite-thread-host.js';

/** Omit applied to each member of a union */
export type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** An engine's call as the thread receives it: tagged with the tables it is for (sqlite-worker.ts). */
export type TablesCall<T extends string, C> = C extends unknown ? C & { tables: T } : never;

/** What the thread is started with */
export interface SqliteThreadData {
  file: string;
}

/** Where a worker's code is: the .mjs beside the bundle (deploy/bundle.ts), or the .ts source. */
interface WorkerEntry {
  bundled: URL;
  source: URL;
}

// In the bundle (deploy/bundle.ts) the worker is sqlite-worker.mjs beside server.mjs.
const ENTRY: WorkerEntry = { bundled: new URL('./sqlite-worker.mjs', import.meta.url), source: new URL('./sqlite-worker.ts', import.meta.url) };

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/**
 * From source (tsx, vitest) a worker thread does not inherit the TypeScript loader: tsx is
 * registered in it first, resolved from the working directory as `node --import tsx` does.
 */
function spawn(entry: WorkerEntry, workerData: unknown): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(entry.bundled, { workerData });
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry.source.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

class SqliteThread {
  private worker: Worker | null = null;
  private failure: Error | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** `name` is how the thread is called in the error when it exits by itself */
  constructor(
    private readonly entry: WorkerEntry,
    private readonly workerData: unknown,
    private readonly name: string,
  ) {}

  /** the thread exited by itself: every call fails */
  get failed(): boolean {
    return this.failure !== null;
  }

  /** why it failed, if it did */
  get failedWith(): Error | null {
    return this.failure;
  }

  /** Starts the thread; the file is opened (and its schema made) before anything else runs. */
  async start(): Promise<void> {
    if (this.worker) return;
    const worker = spawn(this.entry, this.workerData);
    this.worker = worker;
    this.failure = null;
    worker.on('message', (reply: ThreadReply) => this.answer(reply));
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`${this.name} exited with code ${code}`)));
    worker.unref();
    try {
      await this.call({ op: 'check' });
    } catch (err) {
      await this.stop(worker);
      throw err;
    }
  }

  /** `transfer`: buffers moved to the thread instead of copied (the caller must not use them after) */
  call(call: { op: string; tables?: string }, transfer?: ArrayBuffer[]): Promise<unknown> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new StoreNotReadyError('sqlite'));
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // Held while a call is out: a shutdown waiting on a commit must not see an idle loop and exit.
      if (this.pending.size === 0) worker.ref();
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...call, id }, transfer);
    });
  }

  /** Closes the file (unless the thread failed) and ends the thread. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    try {
      if (!this.failure) await this.call({ op: 'close' });
    } finally {
      await this.stop(worker);
    }
  }

  /** Ends the thread; its exit is ours, not a failure. */
  private async stop(worker: Worker): Promise<void> {
    this.worker = null;
    worker.removeAllListeners('exit');
    await worker.terminate();
  }

  private answer(reply: ThreadReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();
    if (reply.ok) p.resolve(reply.value);
    else p.reject(Object.assign(new Error(reply.message), { name: reply.name }));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.worker?.unref();
  }
}

interface Shared {
  thread: SqliteThread;
  /** the SqliteTables started on it and not closed */
  users: number;
  started: Promise<void>;
}

/**
 * The storage threads of one server, by resolved file name: the relay's and the sealed engine
 * of a server are given the same SqliteThreads (its context, app.ts), so they share a thread.
 */
export class SqliteThreads {
  readonly running = new Map<string, Shared>();
  /** by file: when a dead thread may next be replaced (SqliteTables.revive) */
  readonly reviveAfter = new Map<string, number>();
}

/**
 * A thread that died (an abort or out-of-memory in it, a terminate) is replaced at the next call,
 * at most once per this interval per file, so that a file that kills every thread at start costs
 * one thread a second, not one per call. The calls it had in flight failed; the group commit
 * retries them (storage/group-commit.ts), so nothing accepted is lost to the death.
 */
const REVIVE_INTERVAL_MS = 1000;

/**
 * One engine's way to its tables in a SQLite file: start() joins the file's thread (starting it
 * if none runs), close() leaves it (ending it if no other engine uses it). Calls after close()
 * are refused for this engine even while the other still uses the thread.
 */
export class SqliteTables<Call extends { op: string }> {
  private shared: Shared | null = null;
  private starting: Promise<void> | null = null;
  /** started and not closed: a call replaces a thread that died */
  private open = false;
  private reviving: Promise<void> | null = null;
  private readonly key: string;

  /** `tables`: which tables of the file the calls are for (sqlite-worker.ts); `threads`: whom to share a thread with */
  constructor(
    private readonly file: string,
    private readonly tables: 'relay' | 'sealed',
    private readonly threads: SqliteThreads,
  ) {
    this.key = resolve(file);
  }

  get started(): boolean {
    return this.open;
  }

  /** Starts (or joins) the thread; the file is opened (and its schema made) before anything else runs. */
  start(): Promise<void> {
    if (this.shared) return Promise.resolve();
    this.starting ??= this.join()
      .then(() => void (this.open = true))
      .finally(() => (this.starting = null));
    return this.starting;
  }

  private async join(): Promise<void> {
    const threads = this.threads.running;
    let s = threads.get(this.key);
    if (!s || s.thread.failed) {
      const thread = new SqliteThread(ENTRY, { file: this.file } satisfies SqliteThreadData, 'sqlite storage thread');
      const created: Shared = { thread, users: 0, started: thread.start() };
      threads.set(this.key, created);
      created.started.catch(() => {
        if (threads.get(this.key) === created) threads.delete(this.key);
      });
      s = created;
    }
    s.users++;
    try {
      await s.started;
    } catch (err) {
      s.users--;
      throw err;
    }
    this.shared = s;
  }

  /** `transfer`: buffers moved to the thread instead of copied (the caller must not use them after) */
  call(call: WithoutId<Call> | { op: 'check' }, transfer?: ArrayBuffer[]): Promise<unknown> {
    const s = this.shared;
    if (s && !s.thread.failed) return s.thread.call({ ...call, tables: this.tables }, transfer);
    if (!this.open) return Promise.reject(new StoreNotReadyError('sqlite'));
    return this.revive().then(() => this.call(call, transfer));
  }

  /**
   * Leaves a thread that died and joins a live one for the file: the other engine's if it already
   * replaced it, else a new one (REVIVE_INTERVAL_MS). Rejects, leaving the call to fail, when the
   * interval has not passed or the new thread does not start.
   */
  private revive(): Promise<void> {
    this.reviving ??= (async () => {
      const dead = this.shared;
      if (dead?.thread.failed) {
        this.shared = null;
        dead.users--;
      }
      if (this.shared) return;
      const live = this.threads.running.get(this.key);
      if (!live || live.thread.failed) {
        const now = Date.now();
        if (now < (this.threads.reviveAfter.get(this.key) ?? 0)) throw dead?.thread.failedWith ?? new StoreNotReadyError('sqlite');
        this.threads.reviveAfter.set(this.key, now + REVIVE_INTERVAL_MS);
      }
      await this.join();
    })().finally(() => (this.reviving = null));
    return this.reviving;
  }

  /**
   * This engine's calls made so far are answered, then it leaves the thread; the last to leave
   * closes the file and ends the thread.
   */
  async close(): Promise<void> {
    await this.starting?.catch(() => undefined);
    this.open = false;
    await this.reviving?.catch(() => undefined);
    const s = this.shared;
    if (!s) return;
    this.shared = null;
    s.users--;
    if (s.users > 0) {
      // Calls run in order: once this one is answered, every earlier call of this engine is.
      await s.thread.call({ op: 'check' }).catch(() => undefined);
      return;
    }
    if (this.threads.running.get(this.key) === s) this.threads.running.delete(this.key);
    await s.thread.close();
  }
}

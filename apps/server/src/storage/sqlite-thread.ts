/**
 * A storage thread running a synchronous SQLite file (better-sqlite3), seen from the event loop:
 * calls go out as messages and come back as promises, in the order made. Both SQLite engines use
 * it (relay/persistence/sqlite.ts, sealed/store/sqlite.ts); their worker side is
 * sqlite-thread-host.ts. A commit with synchronous=FULL waits for fsync; on the event loop that
 * wait would delay every update in flight.
 */
import { Worker } from 'node:worker_threads';
import { StoreNotReadyError } from '../relay/persistence/types.js';
import type { ThreadReply } from './sqlite-thread-host.js';

/** Omit applied to each member of a union */
export type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** Where a worker's code is: the .mjs beside the bundle (deploy/bundle.ts), or the .ts source. */
export interface WorkerEntry {
  bundled: URL;
  source: URL;
}

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

export class SqliteThread<Call extends { op: string }> {
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

  get started(): boolean {
    return this.worker !== null;
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
  call(call: Call | { op: 'check' } | { op: 'close' }, transfer?: ArrayBuffer[]): Promise<unknown> {
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

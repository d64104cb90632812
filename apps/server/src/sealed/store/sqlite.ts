/**
 * Sealed SQLite storage: the sealed tables of DATA_DIR/sync-relay.sqlite (sqlite-file.ts),
 * written on a storage thread of their own (sqlite-worker.ts), for the reason the relay's are
 * (relay/persistence/sqlite.ts): a commit waiting for fsync must not stall forwarding.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { SQLITE_FILE_NAME } from '../../relay/persistence/sqlite.js';
import { StoreNotReadyError } from '../../relay/persistence/types.js';
import type { SealedSqliteCall, SealedSqliteReply } from './sqlite-worker.js';
import type { SealedAppend, SealedRead, SealedRoomFigures, SealedRoomStats, SealedStore } from './types.js';

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type Call = WithoutId<SealedSqliteCall>;

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** As relay/persistence/sqlite.ts: sealed-sqlite-worker.mjs beside the bundle, or the .ts through tsx. */
function spawnWorker(file: string): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./sealed-sqlite-worker.mjs', import.meta.url), { workerData: { file } });
  const entry = new URL('./sqlite-worker.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData: { file } });
}

export class SqliteSealedStore implements SealedStore {
  readonly engine = 'sqlite';
  readonly file: string;
  private worker: Worker | null = null;
  private failure: Error | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(dataDir: string) {
    this.file = join(dataDir, SQLITE_FILE_NAME);
  }

  async init(): Promise<void> {
    if (this.worker) return;
    const worker = spawnWorker(this.file);
    this.worker = worker;
    this.failure = null;
    worker.on('message', (reply: SealedSqliteReply) => this.answer(reply));
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`sealed sqlite storage thread exited with code ${code}`)));
    worker.unref();
    try {
      await this.call({ op: 'check' });
    } catch (err) {
      await this.stop(worker);
      throw err;
    }
  }

  async append(batches: readonly SealedAppend[]): Promise<number[]> {
    return (await this.call({ op: 'append', batches: [...batches] })) as number[];
  }

  async read(room: string, cursor: number, limit?: number): Promise<SealedRead> {
    return (await this.call({ op: 'read', room, cursor, limit })) as SealedRead;
  }

  async replaceWithSnapshot(room: string, covers: number, envelope: Uint8Array): Promise<boolean> {
    return (await this.call({ op: 'replace', room, covers, envelope })) as boolean;
  }

  async stats(room: string): Promise<SealedRoomStats> {
    return (await this.call({ op: 'stats', room })) as SealedRoomStats;
  }

  async listRooms(prefix: string, after: string, limit: number): Promise<SealedRoomFigures[]> {
    return (await this.call({ op: 'list', prefix, after, limit })) as SealedRoomFigures[];
  }

  async statRoom(room: string): Promise<SealedRoomFigures | null> {
    return (await this.call({ op: 'stat', room })) as SealedRoomFigures | null;
  }

  async purgeRoom(room: string): Promise<void> {
    await this.call({ op: 'purge', room });
  }

  async check(): Promise<void> {
    await this.call({ op: 'check' });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    try {
      if (!this.failure) await this.call({ op: 'close' });
    } finally {
      await this.stop(worker);
    }
  }

  private async stop(worker: Worker): Promise<void> {
    this.worker = null;
    worker.removeAllListeners('exit');
    await worker.terminate();
  }

  private call(call: Call): Promise<unknown> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new StoreNotReadyError(this.engine));
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // Held while a call is out: a shutdown waiting on a commit must not see an idle loop and exit.
      if (this.pending.size === 0) worker.ref();
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...call, id });
    });
  }

  private answer(reply: SealedSqliteReply): void {
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

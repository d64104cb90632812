/**
 * SQLite storage (the default): one file in DATA_DIR (sqlite-file.ts), written on a storage
 * thread (storage/sqlite-worker.ts, through storage/sqlite-thread.ts, shared with the sealed
 * rooms' tables of the same file). better-sqlite3 is synchronous and
 * a commit with synchronous=FULL waits for fsync; on the event loop that wait delayed every update
 * in flight (relay p99 40 ms against 19 ms with the memory engine, bench/relay.ts). Calls run in
 * the order made; a group commit of one PERSIST_FLUSH_MS window is one short transaction.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Revocation } from '../../auth/revocations.js';
import { SqliteTables, SqliteThreads } from '../../storage/sqlite-thread.js';
import { StoreNotReadyError, type AppendBatch, type Compaction, type RelayFenced, type EngineStore, type StoredRoom, type StoredRoomStat } from './types.js';
import type { SqliteCall } from './sqlite-calls.js';
import { SqliteOutbox } from '../../webhooks/outbox/sqlite.js';
import { packBatches } from './packed-batches.js';

export const SQLITE_FILE_NAME = 'sync-relay.sqlite';

export class SqliteStore implements EngineStore {
  readonly engine = 'sqlite';
  readonly file: string;
  private readonly thread: SqliteTables<SqliteCall>;

  /** `threads`: the server's (shared with its other SQLite engine); by default a thread of its own */
  constructor(dataDir: string, threads: SqliteThreads = new SqliteThreads()) {
    this.file = join(dataDir, SQLITE_FILE_NAME);
    this.thread = new SqliteTables(this.file, 'relay', threads);
  }

  init(): Promise<void> {
    return this.thread.start();
  }

  load(room: string): Promise<StoredRoom> {
    return this.thread.call({ op: 'load', room }) as Promise<StoredRoom>;
  }

  append(batches: readonly AppendBatch[]): Promise<string[]> {
    const packed = packBatches(batches);
    return this.thread.call({ op: 'append', batches: packed }, [packed.data]) as Promise<string[]>;
  }

  compact(room: string, compaction: Compaction): Promise<RelayFenced | undefined> {
    // A snapshot is the whole document: copying it to the storage thread cost compaction more
    // than encoding it (a --cpu-prof of bench/relay.ts). Moved when it is given away and owns its buffer.
    const { snapshot } = compaction;
    const movable = compaction.handOver === true && snapshot.byteOffset === 0 && snapshot.byteLength === snapshot.buffer.byteLength && snapshot.buffer instanceof ArrayBuffer;
    return this.thread.call({ op: 'compact', room, compaction }, movable ? [snapshot.buffer as ArrayBuffer] : undefined) as Promise<RelayFenced | undefined>;
  }

  async check(): Promise<void> {
    await this.thread.call({ op: 'check' });
  }

  listRooms(prefix: string, after: string, limit: number): Promise<StoredRoomStat[]> {
    return this.thread.call({ op: 'listRooms', prefix, after, limit }) as Promise<StoredRoomStat[]>;
  }

  statRoom(room: string): Promise<StoredRoomStat | null> {
    return this.thread.call({ op: 'statRoom', room }) as Promise<StoredRoomStat | null>;
  }

  purgeRoom(room: string): Promise<number> {
    return this.thread.call({ op: 'purgeRoom', room }) as Promise<number>;
  }

  async saveRevocation(revocation: Revocation): Promise<void> {
    await this.thread.call({ op: 'saveRevocation', revocation });
  }

  loadRevocations(now: number): Promise<Revocation[]> {
    return this.thread.call({ op: 'loadRevocations', now }) as Promise<Revocation[]>;
  }

  /** The file and its WAL as the file system sees them: no call to the storage thread. */
  async storageBytes(): Promise<number> {
    if (!this.thread.started) throw new StoreNotReadyError(this.engine);
    const sizes = await Promise.all([this.file, `${this.file}-wal`].map((f) => stat(f).then((s) => s.size, () => 0)));
    return sizes.reduce((a, b) => a + b, 0);
  }

  webhookOutbox(): SqliteOutbox {
    return new SqliteOutbox((call) => this.thread.call({ op: 'outbox', call }));
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}

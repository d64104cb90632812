/**
 * Sealed SQLite storage: the sealed tables of DATA_DIR/sync-relay.sqlite (sqlite-file.ts),
 * written on the file's storage thread (storage/sqlite-worker.ts, through
 * storage/sqlite-thread.ts, shared with the relay's tables) for the reason the relay's are
 * (relay/persistence/sqlite.ts): a commit waiting for fsync must not stall forwarding.
 */
import { join } from 'node:path';
import { SQLITE_FILE_NAME } from '../../relay/persistence/sqlite.js';
import { SqliteTables, SqliteThreads } from '../../storage/sqlite-thread.js';
import type { SealedSqliteCall } from './sqlite-calls.js';
import type { SealedAppend, SealedFenced, SealedGeneration, SealedRead, SealedRoomFigures, SealedRoomStats, SealedStore } from './types.js';

export class SqliteSealedStore implements SealedStore {
  readonly engine = 'sqlite';
  readonly file: string;
  private readonly thread: SqliteTables<SealedSqliteCall>;

  /** `threads`: the server's (shared with its other SQLite engine); by default a thread of its own */
  constructor(dataDir: string, threads: SqliteThreads = new SqliteThreads()) {
    this.file = join(dataDir, SQLITE_FILE_NAME);
    this.thread = new SqliteTables(this.file, 'sealed', threads);
  }

  init(): Promise<void> {
    return this.thread.start();
  }

  async append(batches: readonly SealedAppend[]): Promise<Array<number | SealedFenced>> {
    return (await this.thread.call({ op: 'append', batches: [...batches] })) as Array<number | SealedFenced>;
  }

  async read(room: string, cursor: number, limit?: number, maxBytes?: number): Promise<SealedRead> {
    return (await this.thread.call({ op: 'read', room, cursor, limit, maxBytes })) as SealedRead;
  }

  async replaceWithSnapshot(room: string, covers: number, envelope: Uint8Array, generation?: number, refuted?: number): Promise<boolean | SealedFenced> {
    return (await this.thread.call({ op: 'replace', room, covers, envelope, generation, ...(refuted === undefined ? {} : { refuted }) })) as boolean | SealedFenced;
  }

  async stats(room: string): Promise<SealedRoomStats> {
    return (await this.thread.call({ op: 'stats', room })) as SealedRoomStats;
  }

  async listRooms(prefix: string, after: string, limit: number): Promise<SealedRoomFigures[]> {
    return (await this.thread.call({ op: 'list', prefix, after, limit })) as SealedRoomFigures[];
  }

  async statRoom(room: string): Promise<SealedRoomFigures | null> {
    return (await this.thread.call({ op: 'stat', room })) as SealedRoomFigures | null;
  }

  async generation(room: string): Promise<SealedGeneration> {
    return (await this.thread.call({ op: 'generation', room })) as SealedGeneration;
  }

  async generationDeleted(room: string, generation: number): Promise<boolean> {
    return (await this.thread.call({ op: 'deleted', room, generation })) as boolean;
  }

  async purgeRoom(room: string): Promise<void> {
    await this.thread.call({ op: 'purge', room });
  }

  async redrawGenerations(): Promise<number> {
    return (await this.thread.call({ op: 'redraw' })) as number;
  }

  async check(): Promise<void> {
    await this.thread.call({ op: 'check' });
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}

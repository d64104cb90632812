/** The storage thread of the sealed SQLite engine (storage/sqlite-thread-host.ts) over one SealedSqliteFile. */
import { serveThreadCalls } from '../../storage/sqlite-thread-host.js';
import { SealedSqliteFile } from './sqlite-file.js';
import type { SealedAppend } from './types.js';

export type SealedSqliteCall =
  | { id: number; op: 'append'; batches: SealedAppend[] }
  | { id: number; op: 'read'; room: string; cursor: number; limit?: number }
  | { id: number; op: 'replace'; room: string; covers: number; envelope: Uint8Array }
  | { id: number; op: 'stats'; room: string }
  | { id: number; op: 'list'; prefix: string; after: string; limit: number }
  | { id: number; op: 'stat'; room: string }
  | { id: number; op: 'purge'; room: string };

function run(file: SealedSqliteFile, call: SealedSqliteCall): unknown {
  switch (call.op) {
    case 'append':
      return file.append(call.batches);
    case 'read':
      return file.read(call.room, call.cursor, call.limit);
    case 'replace':
      return file.replaceWithSnapshot(call.room, call.covers, call.envelope);
    case 'stats':
      return file.stats(call.room);
    case 'list':
      return file.listRooms(call.prefix, call.after, call.limit);
    case 'stat':
      return file.statRoom(call.room);
    case 'purge':
      return file.purgeRoom(call.room);
  }
}

serveThreadCalls((data) => new SealedSqliteFile((data as { file: string }).file), run);

/** The sealed tables' calls to the storage thread (storage/sqlite-worker.ts), run there on one SealedSqliteFile. */
import type { SealedSqliteFile } from './sqlite-file.js';
import type { SealedAppend } from './types.js';

export type SealedSqliteCall =
  | { id: number; op: 'append'; batches: SealedAppend[] }
  | { id: number; op: 'read'; room: string; cursor: number; limit?: number; maxBytes?: number }
  | { id: number; op: 'replace'; room: string; covers: number; envelope: Uint8Array; generation?: number; refuted?: number }
  | { id: number; op: 'stats'; room: string }
  | { id: number; op: 'list'; prefix: string; after: string; limit: number }
  | { id: number; op: 'stat'; room: string }
  | { id: number; op: 'generation'; room: string }
  | { id: number; op: 'deleted'; room: string; generation: number }
  | { id: number; op: 'purge'; room: string }
  | { id: number; op: 'redraw' };

export function runSealedSqliteCall(file: SealedSqliteFile, call: SealedSqliteCall): unknown {
  switch (call.op) {
    case 'append':
      return file.append(call.batches);
    case 'read':
      return file.read(call.room, call.cursor, call.limit, call.maxBytes);
    case 'replace':
      return file.replaceWithSnapshot(call.room, call.covers, call.envelope, call.generation, call.refuted);
    case 'stats':
      return file.stats(call.room);
    case 'list':
      return file.listRooms(call.prefix, call.after, call.limit);
    case 'stat':
      return file.statRoom(call.room);
    case 'generation':
      return file.generation(call.room);
    case 'deleted':
      return file.generationDeleted(call.room, call.generation);
    case 'purge':
      return file.purgeRoom(call.room);
    case 'redraw':
      return file.redrawGenerations();
  }
}

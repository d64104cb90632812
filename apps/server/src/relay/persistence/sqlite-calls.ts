/** The relay tables' calls to the storage thread (storage/sqlite-worker.ts), run there on one SqliteFile. */
import type { SqliteFile } from './sqlite-file.js';
import type { Revocation } from '../../auth/revocations.js';
import type { OutboxCall } from '../../webhooks/outbox/sqlite.js';
import { unpackBatches, type PackedBatches } from './packed-batches.js';
import type { Compaction } from './types.js';

export type SqliteCall =
  | { id: number; op: 'load'; room: string }
  | { id: number; op: 'append'; batches: PackedBatches }
  | { id: number; op: 'compact'; room: string; compaction: Compaction }
  | { id: number; op: 'listRooms'; prefix: string; after: string; limit: number }
  | { id: number; op: 'statRoom'; room: string }
  | { id: number; op: 'purgeRoom'; room: string }
  | { id: number; op: 'saveRevocation'; revocation: Revocation }
  | { id: number; op: 'loadRevocations'; now: number }
  | { id: number; op: 'outbox'; call: OutboxCall };

export function runSqliteCall(file: SqliteFile, call: SqliteCall): unknown {
  switch (call.op) {
    case 'load':
      return file.load(call.room);
    case 'append':
      return file.append(unpackBatches(call.batches));
    case 'compact':
      return file.compact(call.room, call.compaction);
    case 'listRooms':
      return file.listRooms(call.prefix, call.after, call.limit);
    case 'statRoom':
      return file.statRoom(call.room);
    case 'purgeRoom':
      return file.purgeRoom(call.room);
    case 'saveRevocation':
      return file.saveRevocation(call.revocation);
    case 'loadRevocations':
      return file.loadRevocations(call.now);
    case 'outbox':
      return file.outbox.run(call.call);
  }
}

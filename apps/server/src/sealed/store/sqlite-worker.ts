/**
 * The storage thread of the sealed SQLite engine: owns one SealedSqliteFile and runs the calls
 * it is sent, one at a time and in order, answering each with its result or its error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SealedSqliteFile } from './sqlite-file.js';
import type { SealedAppend } from './types.js';

export type SealedSqliteCall =
  | { id: number; op: 'append'; batches: SealedAppend[] }
  | { id: number; op: 'read'; room: string; cursor: number; limit?: number }
  | { id: number; op: 'replace'; room: string; covers: number; envelope: Uint8Array }
  | { id: number; op: 'stats'; room: string }
  | { id: number; op: 'list'; prefix: string; after: string; limit: number }
  | { id: number; op: 'stat'; room: string }
  | { id: number; op: 'purge'; room: string }
  | { id: number; op: 'check' }
  | { id: number; op: 'close' };

export type SealedSqliteReply = { id: number; ok: true; value?: unknown } | { id: number; ok: false; name: string; message: string };

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
    case 'check':
      return file.check();
    case 'close':
      return file.close();
  }
}

const port = parentPort;
if (port) {
  let file: SealedSqliteFile | undefined;
  let openError: Error | undefined;
  try {
    file = new SealedSqliteFile((workerData as { file: string }).file);
  } catch (err) {
    openError = err instanceof Error ? err : new Error(String(err));
  }
  port.on('message', (call: SealedSqliteCall) => {
    let reply: SealedSqliteReply;
    try {
      if (!file) throw openError ?? new Error('sqlite file not open');
      reply = { id: call.id, ok: true, value: run(file, call) };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      reply = { id: call.id, ok: false, name: e.name, message: e.message };
    }
    port.postMessage(reply);
  });
}

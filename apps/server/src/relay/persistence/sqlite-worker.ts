/**
 * The storage thread for the SQLite engine: owns one SqliteFile and runs the calls it is sent,
 * one at a time and in order, answering each with its result or its error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteFile } from './sqlite-file.js';
import type { Revocation } from '../../auth/revocations.js';
import { unpackBatches, type PackedBatches } from './packed-batches.js';

export type SqliteCall =
  | { id: number; op: 'load'; room: string }
  | { id: number; op: 'append'; batches: PackedBatches }
  | { id: number; op: 'compact'; room: string; snapshot: Uint8Array; throughSeq: number }
  | { id: number; op: 'check' }
  | { id: number; op: 'close' }
  | { id: number; op: 'listRooms'; prefix: string; after: string; limit: number }
  | { id: number; op: 'statRoom'; room: string }
  | { id: number; op: 'purgeRoom'; room: string }
  | { id: number; op: 'saveRevocation'; revocation: Revocation }
  | { id: number; op: 'loadRevocations'; now: number };

export type SqliteReply = { id: number; ok: true; value?: unknown } | { id: number; ok: false; name: string; message: string };

export interface SqliteWorkerData {
  file: string;
}

function run(file: SqliteFile, call: SqliteCall): unknown {
  switch (call.op) {
    case 'load':
      return file.load(call.room);
    case 'append':
      return file.append(unpackBatches(call.batches));
    case 'compact':
      return file.compact(call.room, call.snapshot, call.throughSeq);
    case 'check':
      return file.check();
    case 'close':
      return file.close();
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
  }
}

const port = parentPort;
if (port) {
  let file: SqliteFile | undefined;
  let openError: Error | undefined;
  try {
    file = new SqliteFile((workerData as SqliteWorkerData).file);
  } catch (err) {
    openError = err instanceof Error ? err : new Error(String(err));
  }
  port.on('message', (call: SqliteCall) => {
    let reply: SqliteReply;
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

/**
 * The worker side of a storage thread (sqlite-thread.ts): opens one synchronous file object and
 * runs the calls it is sent, one at a time and in order, answering each with its result or its
 * error. A file that failed to open answers every call with that error.
 */
import { parentPort, workerData } from 'node:worker_threads';

export type ThreadReply = { id: number; ok: true; value?: unknown } | { id: number; ok: false; name: string; message: string };

/** Results whose buffers move to the event loop instead of being copied (withTransfer). */
const transfers = new WeakMap<object, ArrayBuffer[]>();

/**
 * Marks `buffers` (owned by `value` alone) to be moved with the call's result rather than cloned:
 * a cold load's snapshot is megabytes (relay/persistence/sqlite-file.ts).
 */
export function withTransfer<T extends object>(value: T, buffers: ArrayBuffer[]): T {
  transfers.set(value, buffers);
  return value;
}

export interface ThreadFile {
  check(): unknown;
  close(): unknown;
}

export function serveThreadCalls<File extends ThreadFile, Call extends { id: number; op: string }>(
  open: (data: unknown) => File,
  run: (file: File, call: Call) => unknown,
): void {
  const port = parentPort;
  if (!port) return;
  let file: File | undefined;
  let openError: Error | undefined;
  try {
    file = open(workerData);
  } catch (err) {
    openError = err instanceof Error ? err : new Error(String(err));
  }
  port.on('message', (call: Call | { id: number; op: 'check' | 'close' }) => {
    let reply: ThreadReply;
    try {
      if (!file) throw openError ?? new Error('sqlite file not open');
      const value = call.op === 'check' ? file.check() : call.op === 'close' ? file.close() : run(file, call as Call);
      reply = { id: call.id, ok: true, value };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      reply = { id: call.id, ok: false, name: e.name, message: e.message };
    }
    port.postMessage(reply, reply.ok && typeof reply.value === 'object' && reply.value !== null ? transfers.get(reply.value) : undefined);
  });
}

/**
 * In-process SyncProviders over an in-memory UpdateLogStore that outlives them (an app restart is
 * a new provider on the same store), relay only (signaling goes to a port nobody listens on).
 */
import { createRequire } from 'node:module';
import * as Y from 'yjs';
import { SyncProvider } from '../../src/sync-provider.js';
import { updateLogPersistence } from '../../src/persistence/update-log.js';
import type { UpdateLogStore } from '../../src/persistence/types.js';
import type { SyncProviderError, StatusEvent } from '../../src/index.js';
import { decodeProgress, SEALED_META } from '../../src/sealed/progress.js';
import { testToken } from '../../../../test/helpers/server.js';
import { freePort } from '../../../../test/helpers/process.js';
import type { ServerPerTest } from '../../../../test/helpers/server.js';

const WebSocket: unknown = createRequire(import.meta.url)('ws');

/** Entry writes fail (as on a full disk) while `full` is set, or for the next `failNext` appends. */
export class MemStore implements UpdateLogStore {
  entries: Uint8Array[] = [];
  meta = new Map<string, Uint8Array>();
  full = false;
  failNext = 0;
  appends = 0;

  load(): Uint8Array[] {
    return this.entries.map((e) => e.slice());
  }
  append(u: Uint8Array): void {
    this.appends++;
    if (this.full || this.failNext > 0) {
      this.failNext = Math.max(0, this.failNext - 1);
      throw new Error('disk full (test)');
    }
    this.entries.push(u.slice());
  }
  replaceAll(s: Uint8Array): void {
    if (this.full) throw new Error('disk full (test)');
    this.entries = [s.slice()];
  }
  getMeta(k: string): Uint8Array | undefined {
    return this.meta.get(k);
  }
  /** Meta writes succeed while `full` (a small row may still fit where an entry did not). */
  setMeta(k: string, v: Uint8Array): void {
    this.meta.set(k, v.slice());
  }
  close(): void {}

  /** What a kill -9 now would leave (the provider keeps writing to this store, not to the copy). */
  copy(): MemStore {
    const c = new MemStore();
    c.entries = this.load();
    c.meta = new Map([...this.meta].map(([k, v]) => [k, v.slice()]));
    return c;
  }

  /** The stored document's messages (array 'm'). */
  texts(): string[] {
    const doc = new Y.Doc();
    for (const e of this.entries) Y.applyUpdate(doc, e);
    return texts(doc);
  }

  /** The stored sealed cursor (undefined: none stored). */
  cursor(): number | undefined {
    return decodeProgress(this.meta.get(SEALED_META))?.cursor;
  }
}

export interface Device {
  p: SyncProvider;
  doc: Y.Doc;
  errors: SyncProviderError[];
  last: () => StatusEvent | undefined;
  /** destroy, and wait until y-webrtc let go of the room (a sealed room's key derivation is async) */
  stop: () => Promise<void>;
}

export const texts = (doc: Y.Doc): string[] => doc.getArray<string>('m').toArray();
export const push = (d: Device, text: string): void => d.doc.getArray<string>('m').push([text]);

/** `doc`: what the device holds when it starts (a new one by default) */
export async function device(scope: ServerPerTest, url: string, room: string, opts: { key?: Uint8Array; previousKeys?: Uint8Array[]; store?: UpdateLogStore; sub?: string; doc?: Y.Doc } = {}): Promise<Device> {
  const doc = opts.doc ?? new Y.Doc();
  const errors: SyncProviderError[] = [];
  let last: StatusEvent | undefined;
  const p = new SyncProvider(doc, {
    serverUrl: url,
    room,
    getToken: () => testToken(opts.sub ?? 'dev', ['test-*']),
    signalingUrl: `ws://127.0.0.1:${await freePort()}/signal`,
    relayGraceMs: 0,
    WebSocket,
    ...(opts.key ? { sealed: { key: opts.key, mergeMs: 5, ...(opts.previousKeys ? { previousKeys: opts.previousKeys } : {}) } } : {}),
    ...(opts.store ? { persistence: updateLogPersistence(opts.store) } : {}),
  });
  p.on('error', (e) => errors.push(e));
  p.on('status', (s) => (last = s));
  scope.track(p);
  const stop = async (): Promise<void> => {
    // y-webrtc deletes its room once its key promise settles (WebrtcProvider.destroy)
    const key = p.webrtc?.provider.key;
    p.destroy();
    await key;
  };
  return { p, doc, errors, last: () => last, stop };
}

/** Online with nothing pending. */
export const settled = (d: Device): boolean => d.p.status === 'relay' && d.last()?.pending === 0;

/** Waits for `cond` (polled), bounded; `what` is read on timeout, so it can show the state then. */
export async function when(cond: () => boolean, what: string | (() => string), timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Local persistence: what SyncProvider's `persistence` option takes. Two levels:
 *
 * - SyncPersistence binds to the document: indexedDbPersistence() (y-indexeddb) implements it.
 * - UpdateLogStore is a plain log of updates plus a key/value table: what an app with its own
 *   storage (React Native SQLite, a file...) implements; updateLogPersistence() turns it into a
 *   SyncPersistence, compacting the log. sqlitePersistence() (`@sync-suite/client/sqlite`) is one.
 */
import type * as Y from 'yjs';

export interface SyncPersistence {
  /**
   * Put the stored document into `doc`, then store every later update of `doc` (local edits and
   * what the transports bring) until close(). SyncProvider awaits it before opening any socket;
   * if it rejects, SyncProvider reports it (source 'persistence') and opens them without persistence.
   * Failures after it resolved go to `onError` (reported as `error` events, source 'persistence').
   */
  open(doc: Y.Doc, onError: (err: unknown) => void): Promise<void>;
  /**
   * A small value stored next to the document (e.g. what a sealed room's server confirmed: its
   * cursor, what it holds and the room's generation, src/sealed/progress.ts); undefined if never
   * set. Values are opaque bytes: what the client keeps in them may grow (the sealed generation
   * was added inside the same value), an implementation stores and returns them as given.
   */
  getMeta(key: string): Promise<Uint8Array | undefined>;
  setMeta(key: string, value: Uint8Array): Promise<void>;
  /** Stop storing, after what is queued is written. SyncProvider.destroy() calls it. */
  close(): Promise<void>;
}

/** The storage an app implements for updateLogPersistence(). Methods may be synchronous or return promises. */
export interface UpdateLogStore {
  /** every stored entry, oldest first (compacted snapshot, then updates) */
  load(): Uint8Array[] | Promise<Uint8Array[]>;
  /**
   * add one entry at the end; it must be durable when this returns (or its promise resolves), and
   * throw (reject) when it is not: updateLogPersistence then stores the whole document with
   * replaceAll once it can, and writes no meta value before that (persistence/update-log.ts)
   */
  append(update: Uint8Array): void | Promise<void>;
  /** atomically replace every entry with this one (the document's whole state) */
  replaceAll(state: Uint8Array): void | Promise<void>;
  getMeta(key: string): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  setMeta(key: string, value: Uint8Array): void | Promise<void>;
  close(): void | Promise<void>;
}

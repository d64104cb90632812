/**
 * A SyncPersistence over any UpdateLogStore: loads the log into the document, appends every
 * update in order (one queue, so a compaction never races an append), and replaces the log by
 * one snapshot once it holds `compactAfter` entries (as the server compacts its own log).
 */
import * as Y from 'yjs';
import type { SyncPersistence, UpdateLogStore } from './types.js';

export interface UpdateLogOptions {
  /** entries after which the log is replaced by one snapshot (default 500) */
  compactAfter?: number;
}

export function updateLogPersistence(store: UpdateLogStore, opts: UpdateLogOptions = {}): SyncPersistence {
  return new UpdateLogPersistence(store, Math.max(2, opts.compactAfter ?? 500));
}

class UpdateLogPersistence implements SyncPersistence {
  private doc: Y.Doc | undefined;
  private entries = 0;
  private queue: Promise<void> = Promise.resolve();
  private onError: (err: unknown) => void = () => undefined;
  private closed = false;

  constructor(
    private readonly store: UpdateLogStore,
    private readonly compactAfter: number,
  ) {}

  async open(doc: Y.Doc, onError: (err: unknown) => void): Promise<void> {
    if (this.doc) throw new Error('persistence: open() called twice (one persistence per document)');
    this.doc = doc;
    this.onError = onError;
    const stored = await this.store.load();
    // Read after the load: edits made while it was awaited are in the document, not in the log.
    const hadState = doc.store.clients.size > 0 || doc.store.pendingStructs !== null;
    this.entries = stored.length;
    if (stored.length > 0) Y.applyUpdate(doc, Y.mergeUpdates(stored), this);
    doc.on('update', this.onUpdate);
    // What the document held before it was handed to us is stored too.
    if (hadState) this.write(Y.encodeStateAsUpdate(doc));
    await this.queue;
  }

  getMeta(key: string): Promise<Uint8Array | undefined> {
    return this.enqueue(() => this.store.getMeta(key));
  }

  setMeta(key: string, value: Uint8Array): Promise<void> {
    return this.enqueue(() => this.store.setMeta(key, value));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.doc?.off('update', this.onUpdate);
    await this.enqueue(() => this.store.close());
  }

  private readonly onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this || this.closed) return;
    this.write(update);
  };

  private write(update: Uint8Array): void {
    this.entries++;
    // Encoded now, in the same tick as the update: it covers every entry queued before it.
    const snapshot = this.entries >= this.compactAfter && this.doc ? Y.encodeStateAsUpdate(this.doc) : undefined;
    this.enqueue(() => this.store.append(update)).catch(this.onError);
    if (snapshot) {
      this.entries = 1;
      this.enqueue(() => this.store.replaceAll(snapshot)).catch(this.onError);
    }
  }

  private enqueue<T>(task: () => T | Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

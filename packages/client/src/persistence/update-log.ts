/**
 * A SyncPersistence over any UpdateLogStore: loads the log into the document, appends every
 * update in order (one queue, so a compaction never races an append), and replaces the log by
 * one snapshot once it holds `compactAfter` entries (as the server compacts its own log).
 *
 * A write that fails (disk full, quota, busy) may leave the log without an update the document
 * holds. From then on the log is "dirty" until the whole document replaces it: no meta value is
 * written (a sealed room's stored cursor, sealed/progress.ts, would claim entries the stored
 * document lacks, and the device would never read them again: held, and written once the log is
 * whole), and that rewrite is tried after 1 s, doubling up to a minute while it fails (rewrite-retry.ts),
 * and once more at close(). Updates are still appended meanwhile: a small append may fit where
 * the whole document does not (a nearly full disk), and each one stored is one not lost. A
 * replacement (compaction or rewrite) covers every update queued before it, so once one succeeds
 * the log is whole again. Failures are reported once per dirty run, through onError.
 * An entry that does not load (torn, damaged) is skipped, not the whole log: the rest loads, the
 * log is rewritten without it, and storing goes on.
 */
import * as Y from 'yjs';
import { RewriteRetry } from './rewrite-retry.js';
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
  /** a write failed: the log may lack an update the document holds, until a rewrite succeeds */
  private dirty = false;
  /** meta values set while dirty, written after the next rewrite that succeeds */
  private readonly heldMeta = new Map<string, Uint8Array>();
  /** the next rewrite while dirty (its wait doubles while rewrites fail) */
  private readonly retry = new RewriteRetry();
  /** close()'s run: a second call waits for the same one */
  private closing: Promise<void> | undefined;
  /** open()'s load (close() waits for it) */
  private opening: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: UpdateLogStore,
    private readonly compactAfter: number,
  ) {}

  open(doc: Y.Doc, onError: (err: unknown) => void): Promise<void> {
    if (this.doc) return Promise.reject(new Error('persistence: open() called twice (one persistence per document)'));
    this.doc = doc;
    this.onError = onError;
    this.opening = this.load(doc, onError);
    return this.opening;
  }

  private async load(doc: Y.Doc, onError: (err: unknown) => void): Promise<void> {
    const stored = await this.store.load();
    // Read after the load: edits made while it was awaited are in the document, not in the log.
    const hadState = doc.store.clients.size > 0 || doc.store.pendingStructs !== null;
    this.entries = stored.length;
    const damaged = stored.length > 0 ? this.apply(doc, stored) : 0;
    doc.on('update', this.onUpdate);
    if (damaged > 0) {
      onError(new Error(`persistence: ${damaged} of ${stored.length} stored entries did not load (damaged) and were skipped; the log is rewritten without them`));
      this.enqueue(() => this.rewrite()).catch(this.failed);
    } else if (hadState) this.write(Y.encodeStateAsUpdate(doc)); // what the document held before it was handed to us is stored too
    await this.queue;
  }

  getMeta(key: string): Promise<Uint8Array | undefined> {
    return this.enqueue(() => this.heldMeta.get(key) ?? this.store.getMeta(key));
  }

  /** A value that cannot be written now is held, as while dirty, and written with the next rewrite. */
  setMeta(key: string, value: Uint8Array): Promise<void> {
    return this.enqueue(async () => {
      if (this.dirty) return void this.heldMeta.set(key, value);
      try {
        await this.store.setMeta(key, value);
      } catch (err) {
        this.heldMeta.set(key, value);
        this.failed(err);
      }
    });
  }

  /**
   * Resolves once the last writes (a rewrite of a dirty log included) are done and the store is
   * closed. Called while open() still loads, it waits for the load: what the document held by
   * then is written first.
   */
  close(): Promise<void> {
    this.closing ??= this.opening.catch(() => undefined).then(() => {
      this.closed = true;
      this.doc?.off('update', this.onUpdate);
      this.retry.cancel();
      // A last chance for what the log lacks (the app may quit now). Asked when the queue gets
      // here: a write still running may fail and make the log dirty after this call.
      this.enqueue(() => (this.dirty ? this.rewrite() : undefined)).catch(() => undefined);
      return this.enqueue(() => this.store.close());
    });
    return this.closing;
  }

  /** Every entry in one merged update; if that fails, one at a time, skipping those that do not load. Returns how many did not. */
  private apply(doc: Y.Doc, stored: Uint8Array[]): number {
    try {
      Y.applyUpdate(doc, Y.mergeUpdates(stored), this);
      return 0;
    } catch {
      // one damaged entry must not cost the others (Yjs updates are idempotent: a partial apply is harmless)
    }
    let damaged = 0;
    for (const entry of stored) {
      try {
        Y.applyUpdate(doc, entry, this);
      } catch {
        damaged++;
      }
    }
    return damaged;
  }

  private readonly onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this || this.closed) return;
    this.write(update);
  };

  private write(update: Uint8Array): void {
    this.entries++;
    // Encoded now, in the same tick as the update: it covers every update queued before it.
    const snapshot = this.entries >= this.compactAfter && this.doc ? Y.encodeStateAsUpdate(this.doc) : undefined;
    this.enqueue(() => this.store.append(update)).catch(this.failed);
    if (snapshot) {
      this.entries = 1;
      this.enqueue(() => this.full(snapshot)).catch(this.failed);
    }
  }

  private scheduleRewrite(): void {
    if (this.closed) return;
    this.retry.schedule(() => void this.enqueue(() => (this.dirty ? this.rewrite() : undefined)).catch(this.failed));
  }

  /** The whole document as it is when the queue gets here. */
  private rewrite(): void | Promise<void> {
    if (!this.doc) return;
    return this.full(Y.encodeStateAsUpdate(this.doc));
  }

  /**
   * Replaces the log by `state`, which was encoded after every update whose write was queued
   * before this (the queue runs in order; a failure comes from a write queued before, never
   * after), so the log is whole again. Every meta value held back was set before too: written.
   */
  private async full(state: Uint8Array): Promise<void> {
    await this.store.replaceAll(state);
    this.entries = 1;
    if (!this.dirty) return;
    this.dirty = false;
    this.retry.succeeded();
    // each stays held until written (a failure here makes the log dirty again and keeps the rest)
    for (const [key, value] of [...this.heldMeta]) {
      await this.store.setMeta(key, value);
      if (this.heldMeta.get(key) === value) this.heldMeta.delete(key);
    }
  }

  /** Reported once per dirty run; the whole document is written again after a wait (scheduleRewrite). */
  private readonly failed = (err: unknown): void => {
    if (!this.dirty) {
      this.dirty = true;
      this.onError(err);
    }
    this.scheduleRewrite();
  };

  private enqueue<T>(task: () => T | Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

/**
 * Browsers: the document in IndexedDB through y-indexeddb (which stores every update and trims
 * its log itself); meta values in y-indexeddb's custom store, each written after the updates before it.
 *
 * The stored updates are read and applied here, one at a time, before y-indexeddb starts: its own
 * load (fetchUpdates in y-indexeddb) applies them in one go and, when the database does not open
 * or one update does not apply, never emits `synced` and leaves a promise rejected with nobody
 * listening. Its load is replaced too (GuardedIndexeddb), and the first snapshot it writes is
 * written here as any other write, so that a failure of it is seen and retried. A database that does not open, cannot be read or does not answer within
 * `openTimeoutMs` makes open() reject (SyncProvider reports it and syncs without persistence); an
 * update that does not apply is skipped and reported once through `onError`. A write that fails
 * later (quota, an aborted transaction, the connection lost) never throws into the edit; it is
 * handled as persistence/update-log.ts handles one: reported once per run of failures, later
 * updates still written, the whole document written again after 1 s, doubling up to a
 * minute while that fails (rewrite-retry.ts), and once more at close(); meta values are held until it succeeds,
 * and while any write is in flight (it may still abort). A connection the browser closes for good
 * (idb-connection.ts: storage cleared, another tab deleting the database) is reported once and
 * opened again in place of that retry, same waits; the whole document and every meta value known
 * are then written on the new one.
 */
import * as Y from 'yjs';
import { IndexeddbPersistence, PREFERRED_TRIM_SIZE, fetchUpdates } from 'y-indexeddb';
import * as idbUtil from 'lib0/indexeddb';
import { RewriteRetry } from './rewrite-retry.js';
import { CUSTOM_STORE, UPDATES_STORE, openStores, openWithin, usable, watchConnection, type Opening } from './idb-connection.js';
import type { SyncPersistence } from './types.js';

/** the transaction origin of the stored document's load */
const LOAD_ORIGIN = Symbol('indexedDbPersistence load');

export interface IndexedDbPersistenceOptions {
  /**
   * How long opening the database and reading the stored document may take, in ms (default
   * 10 000). Past it open() rejects and the provider syncs without persistence for this session.
   * Also how long close() waits for the writes in flight: past it, it reports them and closes.
   */
  openTimeoutMs?: number;
}

const DEFAULT_OPEN_TIMEOUT_MS = 10_000;

/** `name`: the IndexedDB database (one per document, e.g. the room name). */
export function indexedDbPersistence(name: string, options: IndexedDbPersistenceOptions = {}): SyncPersistence {
  const timeoutMs = options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
  let idb: GuardedIndexeddb | undefined;
  let opened = false;
  let closed = false;
  /** open() in progress: close() waits for it (what was typed meanwhile is written only after the load) */
  let opening: Promise<void> | undefined;
  const ready = (): GuardedIndexeddb => {
    if (!idb) throw new Error('indexedDbPersistence: not opened (pass it to SyncProvider as `persistence`)');
    return idb;
  };
  const destroy = async (): Promise<void> => {
    const current = idb;
    idb = undefined;
    if (!current) return;
    // y-indexeddb's destroy() stops storing at once and closes the connection once its open
    // settles. An open that failed or never answers leaves nothing to close, and that promise then
    // never settles (GuardedIndexeddb): it is awaited only when the connection is there.
    const closing = current.destroy();
    if (current.db) await closing;
    else closing.catch(() => undefined);
  };
  /**
   * The stored document into `doc`, then y-indexeddb on it, bounded by timeoutMs. Runs to its end
   * even when close() comes meanwhile: edits typed before the connection is there are written only
   * by the snapshot at its end (close() waits for it, then for that write).
   */
  const load = async (doc: Y.Doc, onError: (err: unknown) => void): Promise<void> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`IndexedDB "${name}" did not open and load within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const stored = await Promise.race([readStored(name), late]);
      const skipped = applyEach(doc, stored.updates);
      if (skipped.count > 0) {
        onError(new Error(`IndexedDB "${name}": ${skipped.count} of ${stored.updates.length} stored updates could not be applied and were skipped (${skipped.first})`));
      }
      const current = new GuardedIndexeddb(name, doc, timeoutMs, (err) => {
        onError(new Error(`IndexedDB "${name}": storing failed, retrying with the whole document (${describe(err)})`));
      }, () => onError(new Error(`IndexedDB "${name}": writes still unanswered after ${timeoutMs} ms at close; closed without them (what they held may not be stored)`)),
      (why) => onError(new Error(`IndexedDB "${name}": connection lost (${why}); reopening it and writing the whole document again`)));
      idb = current;
      // The load then reads only what was stored after the read above (another tab's writes);
      // the next trim deletes every entry below this key, skipped ones included.
      if (stored.lastKey !== undefined) current._dbref = stored.lastKey + 1;
      await Promise.race([current.loaded, late]);
      // The log replaced by one snapshot of the document, as a guarded write: it holds what was
      // typed before and during open() (no write of its own: the connection was not there yet),
      // and, left in place, skipped updates would be read, skipped and reported again at every
      // start (and a sealed room read from 0 each time, sealed/progress.ts).
      void current.write(() => current.trim(true));
    } catch (err) {
      await destroy().catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    async open(doc: Y.Doc, onError: (err: unknown) => void) {
      if (opened) throw new Error('indexedDbPersistence: open() called twice (one persistence per document)');
      opened = true;
      if (closed) return;
      opening = load(doc, onError);
      await opening;
    },
    async getMeta(key) {
      const current = ready();
      const held = current.heldMeta.get(key);
      if (held) return held;
      const value: unknown = await current.get(key);
      const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : undefined;
      if (bytes) current.read(key, bytes);
      return bytes;
    },
    async setMeta(key, value) {
      const current = ready();
      // while the connection the browser closed is opened again, the value is held
      if (!current.db && !current.reconnecting) throw new Error('indexedDbPersistence: the database is closed');
      await current.setMeta(key, value);
    },
    /**
     * An open() in progress is waited for (at most openTimeoutMs, its own bound): what was typed
     * during it is only in the document until the snapshot written at its end, which the flush
     * then waits for. A failed open leaves nothing to write (it was reported through open()).
     */
    async close() {
      closed = true;
      await opening?.catch(() => undefined);
      await idb?.flush();
      await destroy();
    },
  };
}

/**
 * y-indexeddb that leaves no rejection unhandled when its own open fails (ours above may succeed
 * just before, e.g. as the browser loses its IndexedDB server): its constructor assigns the open
 * to `this._db` and chains on it with no rejection handler (y-indexeddb 9.0.12, pinned in
 * package.json). That assignment lands in the setter below: `opening` keeps the real promise,
 * which open() watches, and y-indexeddb's own chains (and get/set/destroy) get one that never
 * rejects. Nothing calls those after a failed open: open() rejects and the provider then uses no
 * persistence (sync-provider.ts, loadPersistence).
 *
 * Its `update` listener, `_storeUpdate`, is replaced the same way (the constructor assigns it,
 * then registers it): y-indexeddb's one calls db.transaction() inside the listener, which throws once
 * the connection is lost (Safari), and Yjs does not catch listener errors, so the app's edit would
 * throw and the listeners after this one (the transports, sync-provider.ts) would not see it; its
 * writes and trims are not awaited, and count as done once their request succeeds, while the
 * transaction may still abort (a quota error comes at commit). `store` does the same writes, each
 * done when its transaction commits, every failure caught (`write`, `failed`).
 */
class GuardedIndexeddb extends IndexeddbPersistence {
  declare opening: Promise<IDBDatabase>;
  declare private handled: Promise<IDBDatabase>;
  /** set once y-indexeddb's constructor has run (class fields are set after it): see the `_db` getter */
  readonly constructed = true;
  /** the connection open and the updates stored since our read applied (y-indexeddb's load, done here) */
  readonly loaded: Promise<void>;
  declare guardedStore: (update: Uint8Array, origin: unknown) => void;
  /** a write failed: the log may lack an update the document holds, until a whole-document write commits */
  dirty = false;
  /** meta values set while dirty or while a write was in flight (a stored cursor must not claim what the log lacks), written after that */
  readonly heldMeta = new Map<string, Uint8Array>();
  /** setMeta() calls waiting for the writes in flight before their value is written */
  private readonly metaWaiting: Array<() => void> = [];
  /** the last value set for each meta key: an older one whose write failed is not held again */
  private readonly latestMeta = new Map<string, Uint8Array>();
  /** meta values read from the database: written again, with those set, after a lost connection (the database may be gone) */
  private readonly readMeta = new Map<string, Uint8Array>();
  /** the browser closed the connection for good: a new one is to be opened */
  reconnecting = false;
  /** the open in flight (the retry and close() share it) */
  private reopening: { opening: Opening; done: Promise<boolean> } | undefined;
  /** writes not yet committed or failed (close() waits for them) */
  private readonly writes = new Set<Promise<void>>();
  /** writes started so far, and the number of the last one that failed */
  private started = 0;
  private lastFailed = 0;
  /** the next whole-document write while dirty (its wait doubles while they fail) */
  private readonly retry = new RewriteRetry();
  private closing = false;

  constructor(
    name: string,
    doc: Y.Doc,
    /** how long close() waits for the writes in flight (a connection that stops answering) */
    private readonly closeTimeoutMs: number,
    private readonly report: (err: unknown) => void,
    private readonly reportUnanswered: () => void,
    /** the connection lost (once per loss, not per attempt to open it again) */
    private readonly reportLost: (why: string) => void,
  ) {
    super(name, doc);
    // y-indexeddb's load (its constructor, 9.0.12) without its first snapshot, which it writes
    // with no check of the commit (were it lost, what was typed before the connection opened would
    // be too, silently) and whose failure it leaves unhandled; open() writes one through write().
    this.loaded = this.opening.then(
      async (db) => {
        this.db = db;
        if (this._destroyed) return;
        await this.fetch(() => {
          if (this._destroyed) return;
          this.synced = true;
          this.emit('synced', [this]);
        });
        // after the load: a loss during it makes open() reject, and the provider runs without persistence
        if (!this._destroyed) this.watch(db);
      },
      (err: unknown) => Promise.reject(err instanceof Error ? err : new Error(String(err))),
    );
    this.loaded.catch(() => undefined);
  }

  /**
   * y-indexeddb's fetchUpdates, keeping `_dbref` where it was when the store is empty (it would
   * set it to NaN, a key range that throws at the next read).
   */
  private async fetch(afterApply?: () => void): Promise<IDBObjectStore> {
    const ref = this._dbref;
    const store = await fetchUpdates(this, undefined, afterApply);
    if (Number.isNaN(this._dbref)) this._dbref = ref;
    return store;
  }

  /**
   * y-indexeddb's destroy (also on the document's `destroy`): no retry after it, and a setMeta()
   * still waiting is done (its value held, not written).
   */
  override destroy(): Promise<void> {
    this.retry.cancel();
    this.reopening?.opening.stop();
    release(this.metaWaiting.splice(0));
    return super.destroy();
  }

  /** y-indexeddb's _storeUpdate (9.0.12), as a write of its own. Still done while dirty: each update stored is one not lost. */
  store(update: Uint8Array, origin: unknown): void {
    if (!this.db || origin === this) return;
    void this.write(() => {
      const tx = this.readwrite([UPDATES_STORE]);
      tx.objectStore(UPDATES_STORE).add(update);
      return committed(tx);
    });
    if (++this._dbsize >= PREFERRED_TRIM_SIZE) {
      if (this._storeTimeoutId !== null) clearTimeout(this._storeTimeoutId);
      this._storeTimeoutId = setTimeout(() => {
        this._storeTimeoutId = null;
        void this.write(() => this.trim());
      }, this._storeTimeout);
    }
  }

  /**
   * y-indexeddb's storeState(this, force): the log replaced by one snapshot of the document, done
   * when the transaction commits. Every write started before the snapshot is encoded holds an
   * update the snapshot has, so once it commits the log lacks nothing they failed to store.
   */
  async trim(force = false): Promise<void> {
    const updates = await this.fetch();
    if (this._destroyed || (!force && this._dbsize < PREFERRED_TRIM_SIZE)) return;
    const covers = this.started;
    updates.add(Y.encodeStateAsUpdate(this.doc));
    updates.delete(idbUtil.createIDBKeyRangeUpperBound(this._dbref, true));
    const count = updates.count();
    await committed(updates.transaction);
    this._dbsize = count.result;
    // committed on a connection lost since (lost() then counts it as failed anyway): not whole
    if (this.dirty && this.lastFailed <= covers && updates.transaction.db === this.db) this.whole();
  }

  /** A value getMeta() read, unless one was set since (the set one is newer). */
  read(key: string, value: Uint8Array): void {
    if (!this.latestMeta.has(key)) this.readMeta.set(key, value);
  }

  /**
   * While a write is in flight or dirty, the value is held (getMeta returns it): a write in flight
   * may still abort, and the value would then describe an update the log lacks. Held values are
   * written once every write started before has committed and the document is stored whole
   * (writeHeld).
   */
  setMeta(key: string, value: Uint8Array): Promise<void> {
    this.latestMeta.set(key, value);
    this.heldMeta.set(key, value);
    if (this.dirty) return Promise.resolve();
    if (this.writes.size === 0) return this.writeMeta([...this.heldMeta]);
    // done once written, or held as while dirty (failed) or closed
    return new Promise((resolve) => this.metaWaiting.push(resolve));
  }

  /** No write in flight and none failed since the document was last stored whole: the held values are written. */
  private writeHeld(): void {
    if (this.writes.size > 0) return;
    const waiting = this.metaWaiting.splice(0);
    if (this.dirty || this._destroyed || !this.db || this.heldMeta.size === 0) return release(waiting);
    void this.writeMeta([...this.heldMeta]).then(() => release(waiting));
  }

  /**
   * A meta value describes the document as stored (sync-provider.ts, sealed/progress.ts), so it
   * must not commit before the updates written ahead of it. IndexedDB orders read-write
   * transactions only when their scopes overlap: y-indexeddb's own set() spans the custom store
   * alone, so this transaction spans the updates store too, and so commits after every update
   * written before it. The custom store takes ArrayBuffers: a copy of these bytes. A value whose
   * write fails is held, unless a later one was set.
   */
  private writeMeta(values: Array<[string, Uint8Array]>): Promise<void> {
    return this.write(async () => {
      const tx = this.readwrite([UPDATES_STORE, CUSTOM_STORE]);
      for (const [key, value] of values) tx.objectStore(CUSTOM_STORE).put(value.slice().buffer, key);
      try {
        await committed(tx);
        for (const [key, value] of values) if (this.heldMeta.get(key) === value) this.heldMeta.delete(key);
      } catch (err) {
        for (const [key, value] of values) if (this.latestMeta.get(key) === value) this.heldMeta.set(key, value);
        throw err;
      }
    });
  }

  /**
   * close(): the writes started settle; if one failed, the whole document is tried once more (the
   * app may be quitting). Bounded by closeTimeoutMs: a write that never answers (an IndexedDB
   * server that hangs) would otherwise keep close(), and the provider's whenClosed(), pending
   * for ever; that is reported and the connection closed anyway.
   */
  async flush(): Promise<void> {
    this.closing = true;
    this.retry.cancel();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.closeTimeoutMs);
    });
    try {
      let done = await this.settle(late);
      // the connection lost and not open again yet: once more (the app may be quitting), bounded too
      if (done && this.reconnecting && !this._destroyed) done = (await Promise.race([this.reconnect(), late])) !== 'late';
      if (done && this.dirty && this.db && !this._destroyed) {
        void this.write(() => this.trim(true));
        done = await this.settle(late);
      }
      if (!done) tell(this.reportUnanswered);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a write; a failure (thrown or rejected) goes to failed(). The promise never rejects. */
  write(run: () => Promise<void>): Promise<void> {
    const n = ++this.started;
    // run() starts now (its transaction in the order of the updates); a throw becomes a rejection
    const settled: Promise<void> = (async () => run())()
      .catch((err: unknown) => this.failed(err, n))
      .finally(() => {
        this.writes.delete(settled);
        this.writeHeld();
      });
    this.writes.add(settled);
    return settled;
  }

  private readwrite(stores: string[]): IDBTransaction {
    if (!this.db) throw new Error('indexedDbPersistence: the database is closed');
    return this.db.transaction(stores, 'readwrite');
  }

  /** true once no write is in flight; false if `late` comes first */
  private async settle(late: Promise<'late'>): Promise<boolean> {
    while (this.writes.size > 0) if ((await Promise.race([Promise.all(this.writes), late])) === 'late') return false;
    return true;
  }

  /** Write `n` failed: reported once per run of failures; the whole document is written again after a wait. */
  private failed(err: unknown, n: number): void {
    if (this._destroyed) return;
    // a connection the browser closed (its writes in flight abort first, then every one throws InvalidStateError)
    if (this.db && !usable(this.db)) return this.lost(this.db, describe(err));
    this.lastFailed = Math.max(this.lastFailed, n);
    release(this.metaWaiting.splice(0));
    const first = !this.dirty;
    this.dirty = true;
    // the retry is set before the report: the app's listener may throw
    if (!this.closing) this.retry.schedule(() => this.again());
    if (first) tell(() => this.report(err));
  }

  /** The retry: the whole document written again, on a new connection if the browser closed the last one. */
  private again(): void {
    if (this._destroyed || this.closing) return;
    if (!this.reconnecting) {
      if (this.dirty) void this.write(() => this.trim(true));
      return;
    }
    void this.reconnect().then((ok) => {
      if (this._destroyed || this.closing) return; // close() writes it (flush)
      if (ok) void this.write(() => this.trim(true));
      else this.retry.schedule(() => this.again());
    });
  }

  private watch(db: IDBDatabase): void {
    watchConnection(db, (why) => this.lost(db, why));
  }

  /**
   * The browser closed `db` for good. What was written since the document was last stored whole
   * may be gone with it (a deleted database holds nothing): the log counts as failed, the whole
   * document and every meta value known are written again once a new connection opens, after the
   * retry's wait (reopened in place of a retry, same back-off). Reported once, not per attempt.
   */
  private lost(db: IDBDatabase, why: string): void {
    if (db !== this.db || this._destroyed) return;
    this.db = null;
    this.reconnecting = true;
    // A number no write has: a whole-document write encoded before the loss (one committing on
    // this closing connection) covers at most `started`, so it does not end the run of failures
    // (it would cancel the reopen, and store() writes nothing while there is no connection).
    this.lastFailed = ++this.started;
    this.dirty = true;
    for (const known of [this.readMeta, this.latestMeta]) {
      for (const [key, value] of known) if (!this.heldMeta.has(key)) this.heldMeta.set(key, value);
    }
    release(this.metaWaiting.splice(0));
    if (!this.closing) this.retry.schedule(() => this.again());
    tell(() => this.reportLost(why));
  }

  /** Opens the database again (bounded by closeTimeoutMs); true once the new connection is in place. */
  private reconnect(): Promise<boolean> {
    if (this.reopening) return this.reopening.done;
    const opening = openWithin(this.name, this.closeTimeoutMs);
    const done = opening.done.then((db) => {
      this.reopening = undefined;
      return db ? this.adopt(db) : false;
    });
    this.reopening = { opening, done };
    return done;
  }

  private adopt(db: IDBDatabase): boolean {
    if (this._destroyed) {
      db.close();
      return false;
    }
    this.db = db;
    // y-indexeddb's get() and destroy() go through it
    this._db = Promise.resolve(db);
    // keys start again in a database deleted and created again, and another tab may have written:
    // the next trim (the whole document, written next) reads every entry, then deletes them
    this._dbref = 0;
    this.reconnecting = false;
    this.watch(db);
    return true;
  }

  /**
   * The document is stored whole again: the run of failures ends. The meta values held are written
   * once the writes still in flight (this one included) have committed (writeHeld).
   */
  private whole(): void {
    this.dirty = false;
    this.retry.succeeded();
  }
}
Object.defineProperty(GuardedIndexeddb.prototype, '_db', {
  configurable: true,
  get(this: { handled: Promise<IDBDatabase>; constructed?: boolean }) {
    // y-indexeddb's constructor gets a promise that never settles: its load is done in ours instead
    return this.constructed ? this.handled : new Promise<never>(() => undefined);
  },
  set(this: { opening: Promise<IDBDatabase>; handled: Promise<IDBDatabase> }, opening: Promise<IDBDatabase>) {
    this.opening = opening;
    this.handled = opening.catch(() => new Promise<never>(() => undefined));
  },
});
Object.defineProperty(GuardedIndexeddb.prototype, '_storeUpdate', {
  configurable: true,
  get(this: GuardedIndexeddb) {
    return this.guardedStore;
  },
  set(this: GuardedIndexeddb) {
    this.guardedStore = (update, origin) => this.store(update, origin);
  },
});

/**
 * Calls the app's error listener (through onError) from a write's promise chain: a throw there
 * would reject a promise nobody awaits, and stop what follows the report.
 */
const tell = (report: () => void): void => {
  try {
    report();
  } catch {
    // the app's listener threw: nothing here can handle it, and storing goes on
  }
};

/** the DOMException's name says what failed (InvalidStateError, AbortError...) */
const describe = (err: unknown): string =>
  err instanceof Error ? (err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message) : String(err);

const release = (waiting: Array<() => void>): void => {
  for (const resolve of waiting) resolve();
};

/** Resolves when `tx` commits; rejects when it aborts (a failed request aborts it too; a quota error may come only at commit). */
const committed = (tx: IDBTransaction): Promise<void> =>
  new Promise((resolve, reject) => {
    tx.addEventListener('complete', () => resolve());
    tx.addEventListener('abort', () => reject(tx.error ?? new Error('IndexedDB transaction aborted')));
  });

interface Stored {
  updates: unknown[];
  /** the key of the last entry read (y-indexeddb's keys are auto-incremented numbers) */
  lastKey: number | undefined;
}

/** Every stored update, read in one transaction on a connection of its own, closed after. */
async function readStored(name: string): Promise<Stored> {
  const db = await openStores(name);
  try {
    const [store] = idbUtil.transact(db, [UPDATES_STORE], 'readonly');
    if (!store) throw new Error(`IndexedDB "${name}": no "${UPDATES_STORE}" store`);
    const [updates, keys] = await Promise.all([idbUtil.getAll(store), idbUtil.getAllKeys(store)]);
    const lastKey: unknown = keys.at(-1);
    return { updates, lastKey: typeof lastKey === 'number' ? lastKey : undefined };
  } finally {
    db.close();
  }
}

/**
 * Applies each update on its own, as a remote change (not a local edit: the pending count,
 * pending.ts, ignores it), skipping those that do not apply. One Yjs transaction for all, as
 * y-indexeddb's own load: one `update` event.
 */
function applyEach(doc: Y.Doc, updates: unknown[]): { count: number; first: string } {
  let count = 0;
  let first = '';
  Y.transact(
    doc,
    () => {
      for (const update of updates) {
        try {
          if (!(update instanceof Uint8Array)) throw new TypeError('not bytes');
          Y.applyUpdate(doc, update);
        } catch (err) {
          if (count++ === 0) first = err instanceof Error ? err.message : String(err);
        }
      }
    },
    LOAD_ORIGIN,
    false,
  );
  return { count, first };
}

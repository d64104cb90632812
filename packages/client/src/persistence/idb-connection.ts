/**
 * IndexedDB connections for indexeddb.ts: opening one (bounded), and seeing that the browser has
 * closed one for good. A browser closes a connection from its side when the user clears the
 * site's storage, the disk goes, or (Safari) on some backgrounding: the connection fires `close`;
 * another tab deleting or upgrading the database fires `versionchange` (lib0's openDB answers it
 * by closing, as it should: the other tab waits for that). Either way every transaction then throws
 * InvalidStateError, so indexeddb.ts opens the database again.
 */
import * as idbUtil from 'lib0/indexeddb';

/** y-indexeddb's object stores (its updatesStoreName and customStoreName) */
export const UPDATES_STORE = 'updates';
export const CUSTOM_STORE = 'custom';

/** Opens database `name`, creating the stores as y-indexeddb does, so that it finds them. */
export const openStores = (name: string): Promise<IDBDatabase> =>
  idbUtil.openDB(name, (created) => idbUtil.createStores(created, [[UPDATES_STORE, { autoIncrement: true }], [CUSTOM_STORE]]));

/** An open in flight: `done` settles with the connection, or undefined when it failed, took over `ms` or was stopped. */
export interface Opening {
  done: Promise<IDBDatabase | undefined>;
  /** gives up now (destroy): no timer is left, and a connection that opens later is closed */
  stop(): void;
}

export function openWithin(name: string, ms: number): Opening {
  let settle: (db: IDBDatabase | undefined) => void = () => undefined;
  let over = false;
  const finish = (db: IDBDatabase | undefined): void => {
    clearTimeout(timer);
    if (over) {
      db?.close();
      return;
    }
    over = true;
    settle(db);
  };
  const done = new Promise<IDBDatabase | undefined>((resolve) => {
    settle = resolve;
  });
  const timer = setTimeout(() => finish(undefined), ms);
  openStores(name).then(finish, () => finish(undefined));
  return { done, stop: () => finish(undefined) };
}

/**
 * Whether the browser still lets `db` start transactions: one it closed (or whose close is
 * pending) throws InvalidStateError. Its writes in flight abort first (AbortError), while that
 * flag is already set, so a failed write asks this to tell a lost connection from a failed write.
 */
export function usable(db: IDBDatabase): boolean {
  try {
    // no request: it commits at once
    db.transaction([UPDATES_STORE], 'readonly');
    return true;
  } catch (err) {
    return !(err instanceof Error && err.name === 'InvalidStateError');
  }
}

/** Calls `lost` with what happened when the browser closes `db` or another tab deletes or upgrades the database. */
export function watchConnection(db: IDBDatabase, lost: (why: string) => void): void {
  db.addEventListener('close', () => lost('the browser closed the connection'));
  db.addEventListener('versionchange', (event) => {
    // lib0's openDB closes it too; the other tab's delete or upgrade waits for that
    db.close();
    const { newVersion } = event;
    lost(newVersion === null ? 'another tab deleted the database' : `another tab is upgrading the database to version ${newVersion}`);
  });
}

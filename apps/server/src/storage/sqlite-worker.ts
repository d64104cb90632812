/**
 * The storage thread of DATA_DIR's SQLite file (storage/sqlite-thread.ts starts it): one
 * connection serving both the relay's tables (relay/persistence/sqlite-file.ts) and the sealed
 * rooms' (sealed/store/sqlite-file.ts). One thread, not one per engine: a second thread cost
 * about 7 MB of RSS at start (docs/benchmarks.md, memory), and two connections' writes to one
 * file waited on each other's lock anyway.
 */
import { serveThreadCalls } from './sqlite-thread-host.js';
import { checkSqliteFile, openSqliteFile } from './sqlite-open.js';
import { runSqliteCall, type SqliteCall } from '../relay/persistence/sqlite-calls.js';
import { SqliteFile } from '../relay/persistence/sqlite-file.js';
import { runSealedSqliteCall, type SealedSqliteCall } from '../sealed/store/sqlite-calls.js';
import { SealedSqliteFile } from '../sealed/store/sqlite-file.js';
import type { SqliteThreadData, TablesCall } from './sqlite-thread.js';

class DataDirFile {
  private readonly db;
  readonly relay: SqliteFile;
  readonly sealed: SealedSqliteFile;

  constructor(file: string) {
    this.db = openSqliteFile(file);
    try {
      this.relay = new SqliteFile(this.db);
      this.sealed = new SealedSqliteFile(this.db);
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  check(): void {
    checkSqliteFile(this.db);
  }

  close(): void {
    this.db.close();
  }
}

type Call = TablesCall<'relay', SqliteCall> | TablesCall<'sealed', SealedSqliteCall>;

serveThreadCalls(
  (data) => new DataDirFile((data as SqliteThreadData).file),
  (file, call: Call) => (call.tables === 'sealed' ? runSealedSqliteCall(file.sealed, call) : runSqliteCall(file.relay, call)),
);

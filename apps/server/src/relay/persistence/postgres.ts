/**
 * PostgreSQL storage (STORAGE=postgres): the store several instances share. Same contract as
 * SQLite (types.ts): a snapshot plus an update log per room.
 *
 * Ordering: an append takes the row lock of each of its rooms in relay_rooms (in name order, so
 * two instances never deadlock) and keeps it until commit; only then does it draw sequence
 * numbers. So a room's sequence numbers become visible in increasing order, and a reader that
 * has seen seq N will never later find a smaller one committed. That is what makes compact(room,
 * snapshot, N) safe: nothing at or below N can appear after the compactor read the log.
 * compact() takes the same row lock, and is a no-op when the stored snapshot already covers N,
 * so two instances compacting the same room never both replace it.
 *
 * Generation (types.ts): a column of relay_rooms that purgeRoom advances, keeping the row (its
 * counters zeroed). Taking the row lock reads it (lockRoom's upsert returns it, no query more), so
 * an append or compaction naming another generation writes nothing: the check and the write are
 * under the same lock, which a purge takes too.
 */
// Types only: pg is loaded by init() (storage/pg-pool.ts).
import type pg from 'pg';
import { assertSchemaName, openPgPool } from '../../storage/pg-pool.js';
import { inTransaction } from '../../storage/pg-transaction.js';
import type { Revocation } from '../../auth/revocations.js';
import { PostgresOutbox } from '../../webhooks/outbox/postgres.js';
import { RELAY_FENCED, StoreNotReadyError, type AppendBatch, type Compaction, type RelayFenced, type EngineStore, type StoredRoom, type StoredRoomStat } from './types.js';

export interface PostgresStoreOptions {
  /** schema to use (created if missing); default: the URL's search_path, normally public */
  schema?: string;
  /** called for every failed operation (metrics) */
  onError?: (op: 'load' | 'append' | 'compact' | 'check' | 'pool' | 'admin', err: unknown) => void;
}

export class PostgresStore implements EngineStore {
  readonly engine = 'postgres';
  private pool: pg.Pool | null = null;

  constructor(
    private readonly url: string,
    private readonly opts: PostgresStoreOptions = {},
  ) {
    assertSchemaName(opts.schema);
  }

  async init(): Promise<void> {
    if (this.pool) return;
    this.pool = await openPgPool(this.url, this.opts.schema, (err) => this.opts.onError?.('pool', err));
  }

  async load(room: string): Promise<StoredRoom> {
    // REPEATABLE READ: the snapshot and its tail come from one moment, even mid-compaction.
    return this.transaction('load', 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) => {
      // One row always (the generation's: 0 without a relay_rooms row), the snapshot's columns null without one.
      const snap = await c.query<{ snapshot: Buffer | null; through_seq: string | null; stamp: Buffer | null; generation: string | null }>(
        `SELECT s.snapshot, s.through_seq, s.stamp, g.generation
           FROM (SELECT $1::text AS room) k
           LEFT JOIN relay_snapshots s ON s.room = k.room
           LEFT JOIN relay_rooms g ON g.room = k.room`,
        [room],
      );
      const first = snap.rows[0];
      const generation = Number(first?.generation ?? 0);
      const row = first && first.snapshot !== null ? { snapshot: first.snapshot, through_seq: first.through_seq ?? '0', stamp: first.stamp } : undefined;
      const snapshotSeq = row ? Number(row.through_seq) : 0;
      const log = await c.query<{ seq: string; data: Buffer }>(
        'SELECT seq, data FROM relay_updates WHERE room = $1 AND seq > $2 ORDER BY seq',
        [room, snapshotSeq],
      );
      const last = log.rows.at(-1);
      return {
        snapshot: row ? new Uint8Array(row.snapshot) : null,
        snapshotSeq,
        ...(row?.stamp ? { snapshotStamp: new Uint8Array(row.stamp) } : {}),
        updates: log.rows.map((r) => new Uint8Array(r.data)),
        lastSeq: last ? Number(last.seq) : snapshotSeq,
        generation,
      };
    });
  }

  async append(batches: readonly AppendBatch[]): Promise<string[]> {
    const rooms = [...batches].filter((b) => b.updates.length > 0).sort((a, b) => (a.room < b.room ? -1 : a.room > b.room ? 1 : 0));
    if (rooms.length === 0) return (await this.ensureOpen(), []);
    const fenced = new Set<string>();
    await this.transaction('append', 'BEGIN', async (c) => {
      for (const { room, updates, generation } of rooms) {
        if (!(await lockRoom(c, room, updates.length, generation))) {
          fenced.add(room);
          continue;
        }
        await c.query(
          `INSERT INTO relay_updates (room, data)
           SELECT $1, d FROM unnest($2::bytea[]) WITH ORDINALITY AS t(d, i) ORDER BY i`,
          [room, updates.map(toBuffer)],
        );
      }
    });
    // In the batch's order, as the engines answer (types.ts).
    return fenced.size === 0 ? [] : batches.filter((b) => fenced.has(b.room)).map((b) => b.room);
  }

  async compact(room: string, { snapshot, throughSeq, stamp, keep = [], generation }: Compaction): Promise<RelayFenced | undefined> {
    return this.transaction('compact', 'BEGIN', async (c) => {
      if (!(await lockRoom(c, room, 0, generation))) return RELAY_FENCED;
      const current = await c.query<{ through_seq: string }>('SELECT through_seq FROM relay_snapshots WHERE room = $1', [room]);
      const covered = current.rows[0];
      if (covered && Number(covered.through_seq) >= throughSeq) return undefined; // another instance got further
      await c.query(
        `INSERT INTO relay_snapshots (room, snapshot, through_seq, stamp) VALUES ($1, $2, $3, $4)
         ON CONFLICT (room) DO UPDATE SET snapshot = excluded.snapshot, through_seq = excluded.through_seq, stamp = excluded.stamp,
           compactions = relay_snapshots.compactions + 1, compacted_at = now()`,
        [room, toBuffer(snapshot), throughSeq, stamp ? toBuffer(stamp) : null],
      );
      await c.query('DELETE FROM relay_updates WHERE room = $1 AND seq <= $2', [room, throughSeq]);
      // Entries set aside by compaction, appended again after the snapshot (not a change: count 0).
      if (keep.length > 0) {
        await c.query(
          `INSERT INTO relay_updates (room, data)
           SELECT $1, d FROM unnest($2::bytea[]) WITH ORDINALITY AS t(d, i) ORDER BY i`,
          [room, keep.map(toBuffer)],
        );
      }
      return undefined;
    });
  }

  async listRooms(prefix: string, after: string, limit: number): Promise<StoredRoomStat[]> {
    // Byte order (COLLATE "C"), as SQLite and the memory engine sort; room names are ASCII below 0x7f.
    const { rows } = await this.admin((p) =>
      p.query<StatRow>(
        // Rows with nothing stored (a purged room's, kept for its generation) are skipped before the limit.
        `${STAT_SELECT} WHERE r.room COLLATE "C" > $1 AND r.room COLLATE "C" >= $2 AND r.room COLLATE "C" < $3
           AND (EXISTS (SELECT 1 FROM relay_updates u WHERE u.room = r.room) OR EXISTS (SELECT 1 FROM relay_snapshots s WHERE s.room = r.room))
         ORDER BY r.room COLLATE "C" LIMIT $4`,
        [after, prefix, `${prefix}\x7f`, limit],
      ),
    );
    return rows.map(toStat).filter((s): s is StoredRoomStat => s !== null);
  }

  async statRoom(room: string): Promise<StoredRoomStat | null> {
    const { rows } = await this.admin((p) => p.query<StatRow>(`${STAT_SELECT} WHERE r.room = $1`, [room]));
    return rows[0] ? toStat(rows[0]) : null;
  }

  async purgeRoom(room: string): Promise<number> {
    return this.transaction('purge', 'BEGIN', async (c) => {
      await lockRoom(c, room, 0); // waits for an append in flight to commit
      await c.query('DELETE FROM relay_updates WHERE room = $1', [room]);
      await c.query('DELETE FROM relay_snapshots WHERE room = $1', [room]);
      // The row stays, with the next generation: a write naming the one purged is refused.
      const { rows } = await c.query<{ generation: string }>(
        'UPDATE relay_rooms SET generation = generation + 1, appended = 0, changed_at = NULL WHERE room = $1 RETURNING generation',
        [room],
      );
      return Number(rows[0]?.generation);
    });
  }

  async saveRevocation(r: Revocation): Promise<void> {
    await this.transaction('admin', 'BEGIN', async (c) => {
      await c.query('DELETE FROM relay_revocations WHERE until <= $1', [Math.floor(Date.now() / 1000)]);
      await c.query('INSERT INTO relay_revocations (sub, jti, until) VALUES ($1, $2, $3)', [r.sub ?? null, r.jti ?? null, r.until]);
    });
  }

  async loadRevocations(now: number): Promise<Revocation[]> {
    const { rows } = await this.admin((p) =>
      p.query<{ sub: string | null; jti: string | null; until: string }>('SELECT sub, jti, until FROM relay_revocations WHERE until > $1', [now]),
    );
    return rows.map((r) => ({ ...(r.sub !== null ? { sub: r.sub } : {}), ...(r.jti !== null ? { jti: r.jti } : {}), until: Number(r.until) }));
  }

  async check(): Promise<void> {
    const pool = this.open();
    try {
      await pool.query('SELECT 1');
    } catch (err) {
      this.opts.onError?.('check', err);
      throw new Error(`postgres did not answer: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Our tables only (relay_ and sealed_ in this schema): other data in the database is not ours to report. */
  async storageBytes(): Promise<number> {
    const { rows } = await this.admin((p) =>
      p.query<{ bytes: string }>(
        `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
            AND (c.relname LIKE 'relay\\_%' OR c.relname LIKE 'sealed\\_%')`,
      ),
    );
    return Number(rows[0]?.bytes ?? 0);
  }

  webhookOutbox(): PostgresOutbox {
    return new PostgresOutbox(() => this.open());
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }

  private async admin<T>(work: (pool: pg.Pool) => Promise<T>): Promise<T> {
    try {
      return await work(this.open());
    } catch (err) {
      this.opts.onError?.('admin', err);
      throw err;
    }
  }

  private async ensureOpen(): Promise<void> {
    this.open();
  }

  private open(): pg.Pool {
    if (!this.pool) throw new StoreNotReadyError(this.engine);
    return this.pool;
  }

  /** Runs `work` in one transaction (storage/pg-transaction.ts), counting a failure under `op`. */
  private async transaction<T>(op: 'load' | 'append' | 'compact' | 'purge' | 'admin', begin: string, work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const pool = this.open();
    try {
      return await inTransaction(pool, begin, work);
    } catch (err) {
      this.opts.onError?.(op === 'purge' ? 'admin' : op, err);
      throw err;
    }
  }
}

/**
 * Takes the room's row lock until commit (creating the row, in generation 0), adding `count`
 * appended updates. False when `generation` is given and is not the row's: the counters stay, and
 * the caller writes nothing. The row's columns in DO UPDATE are its latest version, read under the
 * lock (a purge committed while this waited is seen), and RETURNING gives the answer: no query more.
 */
async function lockRoom(c: pg.PoolClient, room: string, count: number, generation?: number): Promise<boolean> {
  // changed_at: when updates were last appended (admin API); a compaction (count 0) is no change.
  const { rows } = await c.query<{ generation: string }>(
    `INSERT INTO relay_rooms (room, appended, changed_at) VALUES ($1, $2::bigint, CASE WHEN $2::bigint > 0 THEN now() END)
     ON CONFLICT (room) DO UPDATE SET
       appended = relay_rooms.appended + CASE WHEN $3::bigint IS NULL OR relay_rooms.generation = $3::bigint THEN excluded.appended ELSE 0 END,
       changed_at = CASE WHEN $3::bigint IS NULL OR relay_rooms.generation = $3::bigint
         THEN coalesce(excluded.changed_at, relay_rooms.changed_at) ELSE relay_rooms.changed_at END
     RETURNING generation`,
    [room, count, generation ?? null],
  );
  return generation === undefined || Number(rows[0]?.generation ?? 0) === generation;
}

interface StatRow {
  room: string;
  changed_at: Date | null;
  log_bytes: string;
  log_entries: string;
  snap_bytes: number | null;
}

/** One row per room of relay_rooms, with what is stored for it. */
const STAT_SELECT = `
  SELECT r.room, r.changed_at,
    (SELECT coalesce(sum(octet_length(data)), 0) FROM relay_updates u WHERE u.room = r.room) AS log_bytes,
    (SELECT count(*) FROM relay_updates u WHERE u.room = r.room) AS log_entries,
    (SELECT octet_length(snapshot) FROM relay_snapshots s WHERE s.room = r.room) AS snap_bytes
  FROM relay_rooms r`;

function toStat(row: StatRow): StoredRoomStat | null {
  const entries = Number(row.log_entries) + (row.snap_bytes === null ? 0 : 1);
  if (entries === 0) return null;
  return {
    room: row.room,
    bytes: Number(row.log_bytes) + (row.snap_bytes ?? 0),
    entries,
    lastChangeAt: row.changed_at ? row.changed_at.getTime() : null,
  };
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

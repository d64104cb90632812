/**
 * Sealed PostgreSQL storage (STORAGE=postgres): the store several instances share. Tables from
 * migration 2 (relay/persistence/postgres-migrations.ts). An append takes each room's row lock in
 * sealed_rooms (rooms in name order, so two instances never deadlock), draws the room's next
 * sequence numbers from its `head` and keeps the lock until commit: a room's entries become
 * visible in sequence order. replaceWithSnapshot takes the same lock.
 */
// Types only: pg is loaded by init() (storage/pg-pool.ts).
import type pg from 'pg';
import { StoreNotReadyError } from '../../relay/persistence/types.js';
import { assertSchemaName, openPgPool } from '../../storage/pg-pool.js';
import { inTransaction } from '../../storage/pg-transaction.js';
import { cursorSkipsSnapshot, EMPTY_READ, type SealedAppend, type SealedRead, type SealedRoomFigures, type SealedRoomStats, type SealedStore } from './types.js';

export interface PostgresSealedStoreOptions {
  /** schema to use (created if missing); default: the URL's search_path */
  schema?: string;
  onError?: (op: string, err: unknown) => void;
}

interface RoomRow {
  head: string;
  covers: string;
  snapshot: Buffer | null;
}

export class PostgresSealedStore implements SealedStore {
  readonly engine = 'postgres';
  private pool: pg.Pool | null = null;

  constructor(
    private readonly url: string,
    private readonly opts: PostgresSealedStoreOptions = {},
  ) {
    assertSchemaName(opts.schema);
  }

  async init(): Promise<void> {
    if (this.pool) return;
    this.pool = await openPgPool(this.url, this.opts.schema, (err) => this.opts.onError?.('pool', err));
  }

  async append(batches: readonly SealedAppend[]): Promise<number[]> {
    const order = batches.map((b, i) => ({ b, i })).sort((x, y) => (x.b.room < y.b.room ? -1 : x.b.room > y.b.room ? 1 : 0));
    const firsts = new Array<number>(batches.length).fill(0);
    await this.transaction('append', 'BEGIN', async (c) => {
      for (const { b, i } of order) {
        const n = b.envelopes.length;
        const res = await c.query<{ head: string }>(
          `INSERT INTO sealed_rooms (room, head, changed_at) VALUES ($1, $2::bigint, CASE WHEN $2::bigint > 0 THEN now() END)
           ON CONFLICT (room) DO UPDATE SET head = sealed_rooms.head + excluded.head,
             changed_at = CASE WHEN excluded.head > 0 THEN now() ELSE sealed_rooms.changed_at END
           RETURNING head`,
          [b.room, n],
        );
        const first = Number(res.rows[0]?.head) - n + 1;
        firsts[i] = first;
        if (n === 0) continue;
        await c.query(
          `INSERT INTO sealed_entries (room, seq, envelope)
           SELECT $1, $2::bigint + i - 1, e FROM unnest($3::bytea[]) WITH ORDINALITY AS t(e, i)`,
          [b.room, first, b.envelopes.map(toBuffer)],
        );
      }
    });
    return firsts;
  }

  async read(room: string, cursor: number, limit = Infinity): Promise<SealedRead> {
    return this.transaction('read', 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) => {
      const row = (await c.query<RoomRow>('SELECT head, covers, snapshot FROM sealed_rooms WHERE room = $1', [room])).rows[0];
      if (!row) return EMPTY_READ;
      const head = Number(row.head);
      const covers = Number(row.covers);
      const skip = cursorSkipsSnapshot(cursor, covers, head);
      const rows = await c.query<{ seq: string; envelope: Buffer }>('SELECT seq, envelope FROM sealed_entries WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3', [
        room,
        skip ? cursor : covers,
        Number.isFinite(limit) ? limit : null, // LIMIT NULL: no limit
      ]);
      return {
        snapshot: !skip && row.snapshot ? { covers, envelope: new Uint8Array(row.snapshot) } : null,
        entries: rows.rows.map((r) => ({ seq: Number(r.seq), envelope: new Uint8Array(r.envelope) })),
        head,
      };
    });
  }

  async replaceWithSnapshot(room: string, covers: number, envelope: Uint8Array): Promise<boolean> {
    return this.transaction('replace', 'BEGIN', async (c) => {
      const row = (await c.query<RoomRow>('SELECT head, covers FROM sealed_rooms WHERE room = $1 FOR UPDATE', [room])).rows[0];
      if (!row || covers <= Number(row.covers) || covers > Number(row.head)) return false;
      await c.query('UPDATE sealed_rooms SET covers = $2, snapshot = $3 WHERE room = $1', [room, covers, toBuffer(envelope)]);
      await c.query('DELETE FROM sealed_entries WHERE room = $1 AND seq <= $2', [room, covers]);
      return true;
    });
  }

  async stats(room: string): Promise<SealedRoomStats> {
    return this.transaction('stats', 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) => {
      const row = (await c.query<RoomRow & { snapshot_bytes: number | null }>(
        'SELECT head, covers, length(snapshot) AS snapshot_bytes FROM sealed_rooms WHERE room = $1',
        [room],
      )).rows[0];
      if (!row) return { head: 0, snapshotCovers: 0, entries: 0, bytes: 0 };
      const agg = (await c.query<{ n: string; bytes: string | null }>(
        'SELECT count(*) AS n, sum(length(envelope)) AS bytes FROM sealed_entries WHERE room = $1 AND seq > $2',
        [room, row.covers],
      )).rows[0];
      return { head: Number(row.head), snapshotCovers: Number(row.covers), entries: Number(agg?.n ?? 0), bytes: Number(agg?.bytes ?? 0) + (row.snapshot_bytes ?? 0) };
    });
  }

  async listRooms(prefix: string, after: string, limit: number): Promise<SealedRoomFigures[]> {
    // Byte order (COLLATE "C"), as SQLite and the memory engine sort; room names are ASCII below 0x7f.
    const rows = await this.transaction('list', 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) =>
      (
        await c.query<FigureRow>(
          `${FIGURES_SELECT} WHERE r.head > 0 AND r.room COLLATE "C" > $1 AND r.room COLLATE "C" >= $2 AND r.room COLLATE "C" < $3
           ORDER BY r.room COLLATE "C" LIMIT $4`,
          [after, prefix, `${prefix}\x7f`, limit],
        )
      ).rows,
    );
    return rows.map(toFigures);
  }

  async statRoom(room: string): Promise<SealedRoomFigures | null> {
    const rows = await this.transaction('stat', 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) =>
      (await c.query<FigureRow>(`${FIGURES_SELECT} WHERE r.head > 0 AND r.room = $1`, [room])).rows,
    );
    return rows[0] ? toFigures(rows[0]) : null;
  }

  async purgeRoom(room: string): Promise<void> {
    await this.transaction('purge', 'BEGIN', async (c) => {
      // The row lock orders the purge after any append or snapshot of the room in progress.
      await c.query('SELECT 1 FROM sealed_rooms WHERE room = $1 FOR UPDATE', [room]);
      await c.query('DELETE FROM sealed_entries WHERE room = $1', [room]);
      await c.query('DELETE FROM sealed_rooms WHERE room = $1', [room]);
    });
  }

  async check(): Promise<void> {
    try {
      await this.open().query('SELECT 1');
    } catch (err) {
      this.opts.onError?.('check', err);
      throw new Error(`postgres did not answer: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }

  private open(): pg.Pool {
    if (!this.pool) throw new StoreNotReadyError(this.engine);
    return this.pool;
  }

  /** Runs `work` in one transaction (storage/pg-transaction.ts), counting a failure under `op`. */
  private async transaction<T>(op: string, begin: string, work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const pool = this.open();
    try {
      return await inTransaction(pool, begin, work);
    } catch (err) {
      this.opts.onError?.(op, err);
      throw err;
    }
  }
}

interface FigureRow {
  room: string;
  changed_ms: string | null;
  snapshot_bytes: number | null;
  n: string;
  bytes: string | null;
}

const FIGURES_SELECT = `
  SELECT r.room, (extract(epoch FROM r.changed_at) * 1000)::bigint AS changed_ms, length(r.snapshot) AS snapshot_bytes, e.n, e.bytes
  FROM sealed_rooms r
  CROSS JOIN LATERAL (
    SELECT count(*) AS n, sum(length(envelope)) AS bytes FROM sealed_entries WHERE room = r.room AND seq > r.covers
  ) e`;

function toFigures(r: FigureRow): SealedRoomFigures {
  const snapshot = r.snapshot_bytes ?? 0;
  return {
    room: r.room,
    bytes: Number(r.bytes ?? 0) + snapshot,
    entries: Number(r.n) + (r.snapshot_bytes === null ? 0 : 1),
    lastChangeAt: r.changed_ms === null ? null : Number(r.changed_ms),
  };
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Sealed PostgreSQL storage (STORAGE=postgres): the store several instances share. Tables from
 * migration 2 (relay/persistence/postgres-migrations.ts). An append takes each room's row lock in
 * sealed_rooms (rooms in name order, so two instances never deadlock), draws the room's next
 * sequence numbers from its `head` and keeps the lock until commit: a room's entries become
 * visible in sequence order. replaceWithSnapshot takes the same lock.
 *
 * The snapshot stays in sealed_rooms: PostgreSQL keeps a large value out of line (TOAST) and an
 * UPDATE of the other columns only copies its pointer. No statement but the read that returns
 * the snapshot names the column; the counters (migration 7) answer stats and the admin figures.
 * The generation (migration 8) is drawn by whichever insert makes the row; a purge empties the
 * row, draws a new one and adds the purged one to sealed_deleted_generations (migration 10).
 * `deleted_generation` (migration 9) is written as the version before this one wrote it (the
 * generation it alone remembers, read by such an instance during a rolling upgrade), and read as
 * deleted too: that version's purges are there only (types.ts generationDeleted).
 */
// Types only: pg is loaded by init() (storage/pg-pool.ts).
import type pg from 'pg';
import { StoreNotReadyError } from '../../relay/persistence/types.js';
import { assertSchemaName, openPgPool } from '../../storage/pg-pool.js';
import { inTransaction } from '../../storage/pg-transaction.js';
import { redrawPostgresGenerations } from './redraw.js';
import { cursorSkipsSnapshot, EMPTY_READ, entriesWithin, newSealedGeneration, SEALED_FENCED, sealedStoredBytes, snapshotMayReplace, type SealedAppend, type SealedFenced, type SealedGeneration, type SealedRead, type SealedRoomFigures, type SealedRoomStats, type SealedStore } from './types.js';

export interface PostgresSealedStoreOptions {
  /** schema to use (created if missing); default: the URL's search_path */
  schema?: string;
  onError?: (op: string, err: unknown) => void;
}

interface RoomRow {
  head: string;
  covers: string;
  entries: string;
  entry_bytes: string;
  snapshot_bytes: string | null;
  generation: string;
}

/** A room's row without its snapshot's bytes. */
const ROOM_SELECT = 'SELECT head, covers, entries, entry_bytes, snapshot_bytes, generation FROM sealed_rooms WHERE room = $1';

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

  async append(batches: readonly SealedAppend[]): Promise<Array<number | SealedFenced>> {
    const order = batches.map((b, i) => ({ b, i })).sort((x, y) => (x.b.room < y.b.room ? -1 : x.b.room > y.b.room ? 1 : 0));
    const firsts = new Array<number | SealedFenced>(batches.length).fill(0);
    await this.transaction('append', 'BEGIN', async (c) => {
      for (const { b, i } of order) {
        const n = b.envelopes.length;
        const bytes = b.envelopes.reduce((sum, e) => sum + e.length, 0);
        // With a generation: only the room's row in that generation moves (the UPDATE takes the
        // row lock, so a purge is wholly before or after it); no row, or another generation: fenced.
        const res =
          b.generation === undefined
            ? await c.query<{ head: string }>(
                `INSERT INTO sealed_rooms (room, head, entries, entry_bytes, changed_at, generation)
                 VALUES ($1, $2::bigint, $2::bigint, $3::bigint, CASE WHEN $2::bigint > 0 THEN now() END, $4::bigint)
                 ON CONFLICT (room) DO UPDATE SET head = sealed_rooms.head + excluded.head,
                   entries = sealed_rooms.entries + excluded.entries, entry_bytes = sealed_rooms.entry_bytes + excluded.entry_bytes,
                   changed_at = CASE WHEN excluded.head > 0 THEN now() ELSE sealed_rooms.changed_at END
                 RETURNING head`,
                [b.room, n, bytes, newSealedGeneration()],
              )
            : await c.query<{ head: string }>(
                `UPDATE sealed_rooms SET head = head + $2::bigint, entries = entries + $2::bigint, entry_bytes = entry_bytes + $3::bigint,
                   changed_at = CASE WHEN $2::bigint > 0 THEN now() ELSE changed_at END
                 WHERE room = $1 AND generation = $4::bigint RETURNING head`,
                [b.room, n, bytes, b.generation],
              );
        if (!res.rows[0]) {
          firsts[i] = SEALED_FENCED;
          continue;
        }
        const first = Number(res.rows[0].head) - n + 1;
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

  async read(room: string, cursor: number, limit = Infinity, maxBytes = Infinity): Promise<SealedRead> {
    return this.transaction('read', 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) => {
      const row = (await c.query<RoomRow>(ROOM_SELECT, [room])).rows[0];
      if (!row) return EMPTY_READ;
      const head = Number(row.head);
      const covers = Number(row.covers);
      const skip = cursorSkipsSnapshot(cursor, covers, head);
      const from = skip ? cursor : covers;
      const count = Number.isFinite(limit) ? limit : null; // LIMIT NULL: no limit
      let rows: pg.QueryResult<{ seq: string; envelope: Buffer }>;
      if (Number.isFinite(maxBytes)) {
        // a page's sizes first (octet_length reads a TOASTed value's header only), then only the entries that fit
        const sizes = (await c.query<{ seq: string; n: number }>('SELECT seq, octet_length(envelope) AS n FROM sealed_entries WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3', [room, from, count])).rows;
        const n = entriesWithin(sizes.map((r) => r.n), maxBytes);
        const last = n === 0 ? from : Number((sizes[n - 1] as { seq: string }).seq);
        rows = await c.query<{ seq: string; envelope: Buffer }>('SELECT seq, envelope FROM sealed_entries WHERE room = $1 AND seq > $2 AND seq <= $3 ORDER BY seq', [room, from, last]);
      } else rows = await c.query<{ seq: string; envelope: Buffer }>('SELECT seq, envelope FROM sealed_entries WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3', [room, from, count]);
      // the snapshot's bytes only when this read returns them
      const snapshot =
        !skip && row.snapshot_bytes !== null
          ? (await c.query<{ snapshot: Buffer }>('SELECT snapshot FROM sealed_rooms WHERE room = $1', [room])).rows[0]?.snapshot
          : undefined;
      return {
        snapshot: snapshot ? { covers, envelope: new Uint8Array(snapshot) } : null,
        entries: rows.rows.map((r) => ({ seq: Number(r.seq), envelope: new Uint8Array(r.envelope) })),
        head,
        generation: Number(row.generation),
      };
    });
  }

  async replaceWithSnapshot(room: string, covers: number, envelope: Uint8Array, generation?: number, refuted?: number): Promise<boolean | SealedFenced> {
    return this.transaction('replace', 'BEGIN', async (c) => {
      const row = (await c.query<RoomRow>(`${ROOM_SELECT} FOR UPDATE`, [room])).rows[0];
      if (generation !== undefined && (!row || Number(row.generation) !== generation)) return SEALED_FENCED;
      if (!row || !snapshotMayReplace(covers, Number(row.covers), Number(row.head), refuted)) return false;
      await c.query('DELETE FROM sealed_entries WHERE room = $1 AND seq <= $2', [room, covers]);
      // Counted again from what stays (not decremented): an older instance appending after
      // migration 7 does not keep the counters, so subtracting could take them below zero.
      const left = (
        await c.query<{ n: string; bytes: string }>(
          'SELECT count(*) AS n, coalesce(sum(length(envelope)), 0) AS bytes FROM sealed_entries WHERE room = $1',
          [room],
        )
      ).rows[0];
      await c.query(
        `UPDATE sealed_rooms SET covers = $2, snapshot = $3, snapshot_bytes = $4, entries = $5::bigint, entry_bytes = $6::bigint
         WHERE room = $1`,
        [room, covers, toBuffer(envelope), envelope.length, left?.n ?? 0, left?.bytes ?? 0],
      );
      return true;
    });
  }

  async stats(room: string): Promise<SealedRoomStats> {
    const row = await this.transaction('stats', 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) => (await c.query<RoomRow>(ROOM_SELECT, [room])).rows[0]);
    if (!row) return { head: 0, snapshotCovers: 0, entries: 0, bytes: 0, generation: 0 };
    const entries = Number(row.entries);
    const bytes = sealedStoredBytes(entries, Number(row.entry_bytes), nullableNumber(row.snapshot_bytes));
    return { head: Number(row.head), snapshotCovers: Number(row.covers), entries, bytes, generation: Number(row.generation) };
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

  async generation(room: string): Promise<SealedGeneration> {
    // Two statements (READ COMMITTED): the SELECT sees a row another instance committed after the
    // INSERT's snapshot, which ON CONFLICT DO NOTHING skipped without returning it.
    return this.transaction('generation', 'BEGIN', async (c) => {
      await c.query('INSERT INTO sealed_rooms (room, generation) VALUES ($1, $2::bigint) ON CONFLICT (room) DO NOTHING', [room, newSealedGeneration()]);
      const row = (await c.query<{ generation: string }>('SELECT generation FROM sealed_rooms WHERE room = $1', [room])).rows[0];
      if (!row) throw new Error(`sealed room ${room} has no row after its insert`);
      return { current: Number(row.generation) };
    });
  }

  async generationDeleted(room: string, generation: number): Promise<boolean> {
    if (generation === 0) return false;
    const rows = await this.transaction('deleted', 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) =>
      (
        await c.query<{ deleted: boolean }>(
          `SELECT EXISTS (SELECT 1 FROM sealed_deleted_generations WHERE room = $1 AND generation = $2::bigint)
             OR EXISTS (SELECT 1 FROM sealed_rooms WHERE room = $1 AND deleted_generation = $2::bigint) AS deleted`,
          [room, generation],
        )
      ).rows,
    );
    return rows[0]?.deleted === true;
  }

  async purgeRoom(room: string): Promise<void> {
    await this.transaction('purge', 'BEGIN', async (c) => {
      // The row lock orders the purge after any append or snapshot of the room in progress.
      await c.query('SELECT 1 FROM sealed_rooms WHERE room = $1 FOR UPDATE', [room]);
      await c.query('DELETE FROM sealed_entries WHERE room = $1', [room]);
      // the generation it ends, and the one in deleted_generation (an instance of the version
      // before this one may have put it there alone), which the UPDATE below may overwrite
      await c.query(
        `INSERT INTO sealed_deleted_generations (room, generation)
         SELECT room, g FROM sealed_rooms, LATERAL (VALUES (generation), (deleted_generation)) AS v(g) WHERE room = $1 AND g <> 0
         ON CONFLICT DO NOTHING`,
        [room],
      );
      // The row stays, emptied, with a new generation; deleted_generation as the version before
      // this one wrote it: the purged one, unless nothing was stored in it since an earlier
      // delete, whose generation stays (the right-hand sides read the row before the update).
      await c.query(
        `UPDATE sealed_rooms SET head = 0, covers = 0, snapshot = NULL, snapshot_bytes = NULL, changed_at = NULL, entries = 0, entry_bytes = 0,
           deleted_generation = CASE WHEN head > 0 OR deleted_generation = 0 THEN generation ELSE deleted_generation END,
           generation = $2::bigint WHERE room = $1`,
        [room, newSealedGeneration()],
      );
    });
  }

  async redrawGenerations(): Promise<number> {
    return this.transaction('redraw', 'BEGIN', (c) => redrawPostgresGenerations(c));
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
  entries: string;
  entry_bytes: string;
  snapshot_bytes: string | null;
}

const FIGURES_SELECT = `
  SELECT r.room, (extract(epoch FROM r.changed_at) * 1000)::bigint AS changed_ms, r.entries, r.entry_bytes, r.snapshot_bytes
  FROM sealed_rooms r`;

function toFigures(r: FigureRow): SealedRoomFigures {
  const entries = Number(r.entries);
  const snapshot = nullableNumber(r.snapshot_bytes);
  return {
    room: r.room,
    bytes: sealedStoredBytes(entries, Number(r.entry_bytes), snapshot),
    entries: entries + (snapshot === null ? 0 : 1),
    lastChangeAt: r.changed_ms === null ? null : Number(r.changed_ms),
  };
}

function nullableNumber(v: string | null): number | null {
  return v === null ? null : Number(v);
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

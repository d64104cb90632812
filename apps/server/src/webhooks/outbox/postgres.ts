/**
 * The outbox of the PostgreSQL engine: the table webhook_outbox (migration 5,
 * relay/persistence/postgres-migrations.ts), shared by every instance on the database. A claim
 * takes due rows with FOR UPDATE SKIP LOCKED and marks them held until the lease ends, so two
 * instances claiming at once never get the same row, and a row stays with its claimer while it
 * is sent (the row lock alone ends with the claim's transaction).
 */
import type pg from 'pg';
import type { OutboxEntry, OutboxStats, WebhookOutbox } from './types.js';

export class PostgresOutbox implements WebhookOutbox {
  /** `pool` throws when the store is not open */
  constructor(private readonly pool: () => pg.Pool) {}

  async add(body: string, now: number, max: number | null): Promise<number> {
    if (max === null) {
      await this.pool().query('INSERT INTO webhook_outbox (body, due_at) VALUES ($1, $2)', [body, now]);
      return 0;
    }
    const c = await this.pool().connect();
    try {
      await c.query('BEGIN');
      await c.query('INSERT INTO webhook_outbox (body, due_at) VALUES ($1, $2)', [body, now]);
      const res = await c.query('DELETE FROM webhook_outbox WHERE id <= (SELECT id FROM webhook_outbox ORDER BY id DESC LIMIT 1 OFFSET $1)', [max]);
      await c.query('COMMIT');
      c.release();
      return res.rowCount ?? 0;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      c.release(true);
      throw err;
    }
  }

  async claim(now: number, leaseMs: number, limit: number): Promise<OutboxEntry[]> {
    const { rows } = await this.pool().query<{ id: string; body: string; attempts: number; due_at: string }>(
      `UPDATE webhook_outbox SET claimed_until = $2
       WHERE id IN (
         SELECT id FROM webhook_outbox WHERE due_at <= $1 AND claimed_until <= $1
         ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING id, body, attempts, due_at`,
      [now, now + leaseMs, limit],
    );
    rows.sort((a, b) => Number(a.due_at) - Number(b.due_at) || Number(a.id) - Number(b.id));
    return rows.map((r) => ({ id: Number(r.id), body: r.body, attempts: r.attempts }));
  }

  async remove(id: number): Promise<void> {
    await this.pool().query('DELETE FROM webhook_outbox WHERE id = $1', [id]);
  }

  async retry(id: number, attempts: number, due: number): Promise<void> {
    await this.pool().query('UPDATE webhook_outbox SET attempts = $2, due_at = $3, claimed_until = 0 WHERE id = $1', [id, attempts, due]);
  }

  async release(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.pool().query('UPDATE webhook_outbox SET claimed_until = 0 WHERE id = ANY($1::bigint[])', [ids]);
  }

  async stats(): Promise<OutboxStats> {
    const { rows } = await this.pool().query<{ size: number; next: string | null }>(
      'SELECT count(*)::int AS size, min(greatest(due_at, claimed_until)) AS next FROM webhook_outbox',
    );
    const row = rows[0];
    return { size: row?.size ?? 0, nextDue: row?.next == null ? null : Number(row.next) };
  }
}

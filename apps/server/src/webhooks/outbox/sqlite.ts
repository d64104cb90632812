/**
 * The outbox of the SQLite engine: a table in the relay's SQLite file. SqliteOutboxTable runs on
 * the storage thread with the rest of the file (relay/persistence/sqlite-file.ts), one
 * transaction per call; SqliteOutbox is its face on the event loop, sending it OutboxCalls.
 * One process uses a SQLite file, so the claims of a previous run end when the file is opened.
 */
import type Database from 'better-sqlite3';
import type { OutboxEntry, OutboxStats, WebhookOutbox } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS webhook_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  due_at INTEGER NOT NULL,
  claimed_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (due_at);
`;

export type OutboxCall =
  | { op: 'add'; body: string; now: number; max: number | null }
  | { op: 'claim'; now: number; leaseMs: number; limit: number }
  | { op: 'remove'; id: number }
  | { op: 'retry'; id: number; attempts: number; due: number }
  | { op: 'release'; ids: number[] }
  | { op: 'stats' };

export class SqliteOutboxTable {
  private readonly st;

  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
    db.exec('UPDATE webhook_outbox SET claimed_until = 0 WHERE claimed_until > 0');
    this.st = {
      add: db.prepare<[string, number]>('INSERT INTO webhook_outbox (body, due_at) VALUES (?, ?)'),
      // Everything at or below the id just past the newest `max`: the oldest, by insertion.
      trim: db.prepare<[number]>('DELETE FROM webhook_outbox WHERE id <= (SELECT id FROM webhook_outbox ORDER BY id DESC LIMIT 1 OFFSET ?)'),
      due: db.prepare<[number, number, number], { id: number; body: string; attempts: number }>(
        'SELECT id, body, attempts FROM webhook_outbox WHERE due_at <= ? AND claimed_until <= ? ORDER BY due_at, id LIMIT ?',
      ),
      hold: db.prepare<[number, number]>('UPDATE webhook_outbox SET claimed_until = ? WHERE id = ?'),
      remove: db.prepare<[number]>('DELETE FROM webhook_outbox WHERE id = ?'),
      retry: db.prepare<[number, number, number]>('UPDATE webhook_outbox SET attempts = ?, due_at = ?, claimed_until = 0 WHERE id = ?'),
      release: db.prepare<[number]>('UPDATE webhook_outbox SET claimed_until = 0 WHERE id = ?'),
      stats: db.prepare<[], { size: number; next: number | null }>('SELECT count(*) AS size, min(max(due_at, claimed_until)) AS next FROM webhook_outbox'),
    };
  }

  run(call: OutboxCall): unknown {
    const { st, db } = this;
    switch (call.op) {
      case 'add':
        return db.transaction(() => {
          st.add.run(call.body, call.now);
          return call.max === null ? 0 : st.trim.run(call.max).changes;
        })();
      case 'claim':
        return db.transaction(() => {
          const rows = st.due.all(call.now, call.now, call.limit);
          for (const r of rows) st.hold.run(call.now + call.leaseMs, r.id);
          return rows;
        })();
      case 'remove':
        return void st.remove.run(call.id);
      case 'retry':
        return void st.retry.run(call.attempts, call.due, call.id);
      case 'release':
        return db.transaction(() => {
          for (const id of call.ids) st.release.run(id);
        })();
      case 'stats': {
        const row = st.stats.get();
        return { size: row?.size ?? 0, nextDue: row?.next ?? null };
      }
    }
  }
}

/** The outbox on the event loop: each call goes to the storage thread. */
export class SqliteOutbox implements WebhookOutbox {
  constructor(private readonly call: (call: OutboxCall) => Promise<unknown>) {}

  async add(body: string, now: number, max: number | null): Promise<number> {
    return (await this.call({ op: 'add', body, now, max })) as number;
  }

  async claim(now: number, leaseMs: number, limit: number): Promise<OutboxEntry[]> {
    return (await this.call({ op: 'claim', now, leaseMs, limit })) as OutboxEntry[];
  }

  async remove(id: number): Promise<void> {
    await this.call({ op: 'remove', id });
  }

  async retry(id: number, attempts: number, due: number): Promise<void> {
    await this.call({ op: 'retry', id, attempts, due });
  }

  async release(ids: readonly number[]): Promise<void> {
    if (ids.length > 0) await this.call({ op: 'release', ids: [...ids] });
  }

  async stats(): Promise<OutboxStats> {
    return (await this.call({ op: 'stats' })) as OutboxStats;
  }
}

/** The outbox of the memory engine: in-process, so nothing survives the process (as its rooms). */
import type { OutboxEntry, OutboxStats, WebhookOutbox } from './types.js';

interface Row extends OutboxEntry {
  due: number;
  claimedUntil: number;
}

export class MemoryOutbox implements WebhookOutbox {
  /** by id, which grows: insertion order is age order */
  private readonly rows = new Map<number, Row>();
  private nextId = 1;

  async add(body: string, now: number, max: number | null): Promise<number> {
    this.rows.set(this.nextId, { id: this.nextId, body, attempts: 0, due: now, claimedUntil: 0 });
    this.nextId++;
    let dropped = 0;
    if (max !== null) {
      for (const id of this.rows.keys()) {
        if (this.rows.size <= max) break;
        this.rows.delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  async claim(now: number, leaseMs: number, limit: number): Promise<OutboxEntry[]> {
    const due = [...this.rows.values()].filter((r) => r.due <= now && r.claimedUntil <= now);
    due.sort((a, b) => a.due - b.due || a.id - b.id);
    return due.slice(0, limit).map((r) => {
      r.claimedUntil = now + leaseMs;
      return { id: r.id, body: r.body, attempts: r.attempts };
    });
  }

  async remove(id: number): Promise<void> {
    this.rows.delete(id);
  }

  async retry(id: number, attempts: number, due: number): Promise<void> {
    const row = this.rows.get(id);
    if (!row) return;
    row.attempts = attempts;
    row.due = due;
    row.claimedUntil = 0;
  }

  async release(ids: readonly number[]): Promise<void> {
    for (const id of ids) {
      const row = this.rows.get(id);
      if (row) row.claimedUntil = 0;
    }
  }

  async stats(): Promise<OutboxStats> {
    let nextDue: number | null = null;
    for (const r of this.rows.values()) {
      const at = Math.max(r.due, r.claimedUntil);
      if (nextDue === null || at < nextDue) nextDue = at;
    }
    return { size: this.rows.size, nextDue };
  }
}

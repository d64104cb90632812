/**
 * Group commit, for every kind of stored entry (relay updates: relay/persistence/flush-queue.ts;
 * sealed envelopes: sealed/commit-queue.ts). What is accepted during one window is written in a
 * single transaction. The window starts with the oldest pending item; an accepted item is durable
 * within PERSIST_FLUSH_MS. How long the window lasts (`window`):
 * - 'half': half of PERSIST_FLUSH_MS, leaving the other half for the commit itself. For queues
 *   whose commit holds output back (sealed acks and fan-out, the relay's publish to other
 *   instances): the commit's latency is theirs.
 * - 'bound': as long as the bound allows: PERSIST_FLUSH_MS minus the slowest of the last
 *   COMMIT_HISTORY commits and a tenth of PERSIST_FLUSH_MS for a late timer (half, until a
 *   commit has been timed). Fewer commits, each with its fsync; for the relay on one instance,
 *   whose output never waits for a commit. A slow disk shortens the window below half.
 *
 * Failures. Nothing is dropped: a failed commit keeps its items (in order, ahead of newer ones)
 * until they are committed or their room is deleted (discard()).
 * - Back-off: a failed batch is retried after `retryMs`, doubling per failure in a row up to
 *   `retryMaxMs`; a commit that succeeds resets it. Storage that is down (PostgreSQL, a full disk)
 *   costs one attempt per back-off step, not one every 500 ms.
 * - Isolation: once the batch failed ISOLATE_AFTER times in a row, each room is written in its
 *   own transaction. A room that fails alone while another write of the same round succeeds is
 *   a poison room (items storage refuses, not storage down): it is set aside with its own back-off
 *   and from then on written alone, so the other rooms commit in their windows as before. Its
 *   items (and the ones that arrive meanwhile, after them) stay pending; once a write of it
 *   succeeds it joins the batches again. A room that fails forever is retried every `retryMaxMs`
 *   forever, each failure counted; its connections get no ack / no commit for what is pending
 *   (sealed: the devices send it again; relay: clients keep their state), bounded as in an outage
 *   by ROOM_MAX_BYTES.
 *   A round in which no write succeeds stops once DOWN_AFTER_FAILURES writes failed taking
 *   DOWN_AFTER_MS together (storage down or hanging until the driver's timeout, not one room):
 *   the rest go back untried, first in line for the next round, so a round (and a shutdown
 *   flush, a room load, a delete waiting for it) costs a few timeouts, not one per room.
 *   Seq order (sealed): seqs are drawn under the room's row lock inside the transaction and a
 *   room is in at most one write at a time, in its arrival order, so a room's own transaction
 *   gives the same order as a shared one; `committed` is called per write, after it.
 * - Log: one error line when commits start failing (at most one per LOG_INTERVAL_MS); further
 *   failures, set-aside rooms and their failures go through a LogBudget (a few warn lines per
 *   kind per LOG_INTERVAL_MS, the rest counted); one info line when nothing fails any more. Every
 *   failed write counts in storage_errors_total{op}.
 */
import type { FastifyBaseLogger } from 'fastify';
import { LogBudget, type ServerMetrics } from '@sync-suite/shared/node';

/** One window's items, per room, in arrival order. */
export type RoomBatch<Item> = Array<[room: string, items: Item[]]>;

export interface GroupCommitOptions<Item, Result> {
  flushMs: number;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  /** writes one window in one transaction */
  write: (batch: RoomBatch<Item>) => Promise<Result>;
  /**
   * called after each successful commit, once per room of it: its items, what `write` returned
   * and the room's index in the batch (a throw for one room does not keep the others untold)
   */
  committed?: (room: string, items: Item[], result: Result, index: number) => void;
  /** the `op` label of storage_errors_total and the words of the log line when a commit fails */
  failure: { op: string; message: string };
  /** the first retry after a failed commit, ms (doubling per failure in a row); 500 */
  retryMs?: number;
  /**
   * the longest retry interval, ms; 5 000: sealed acks and (with Redis) other instances' delivery
   * wait for the commit, so storage that is back must not wait long for the next try
   */
  retryMaxMs?: number;
  /** how long a window lasts: 'half' (the default) or 'bound' (see above) */
  window?: CommitWindow;
  /** milliseconds, monotonic (performance.now by default; tests give their own) */
  now?: () => number;
}

export type CommitWindow = 'half' | 'bound';

/** how many of the last commits' durations the 'bound' window allows for */
export const COMMIT_HISTORY = 8;
/** failed batches in a row after which each room is written in its own transaction */
export const ISOLATE_AFTER = 2;
/**
 * A round with no write succeeding stops once this many writes failed and they took this long
 * together (storage down or hanging); quick refusals (a poison room's rows) go on room by room.
 */
export const DOWN_AFTER_FAILURES = 2;
export const DOWN_AFTER_MS = 1000;
/** the log budget's interval, ms, and the warn lines each kind gets per interval */
export const LOG_INTERVAL_MS = 600_000;
export const LOG_LINES_PER_INTERVAL = 3;

const DEFAULT_RETRY_MS = 500;
const DEFAULT_RETRY_MAX_MS = 5_000;

/** A room set aside: its items fail alone while others commit. */
interface Suspect<Item> {
  items: Item[];
  /** failed writes of it in a row */
  failures: number;
  /** when it is written again (this.now() time) */
  retryAt: number;
}

/** One transaction of a round: which rooms, and whether they came from `suspects`. */
interface Write<Item> {
  batch: RoomBatch<Item>;
  suspect?: Suspect<Item>;
}

type BudgetKind = 'commit still failing' | 'room set aside: its items fail alone, the others commit' | 'set-aside room still failing';

export class GroupCommitQueue<Item, Result = void> {
  private pending = new Map<string, Item[]>();
  /** rooms set aside (poison), each written alone on its own back-off; never also in `pending` */
  private readonly suspects = new Map<string, Suspect<Item>>();
  /** rooms of the round being written (neither in `pending` nor in `suspects` meanwhile) */
  private readonly writing = new Set<string>();
  private oldestAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  private readonly now: () => number;
  /** the last commits' durations, ms (a ring of COMMIT_HISTORY; 'bound' windows only) */
  private readonly durations: number[] = [];
  private nextDuration = 0;
  /** failed rounds in a row whose items went back to `pending` (storage down, or not yet isolated) */
  private failedRounds = 0;
  /** no batch of `pending` is written before this (back-off), unless flush() asks */
  private retryAt = 0;
  /** failed writes since nothing was failing (for the log: one error line, then the budget) */
  private failingSince: { at: number; failures: number } | null = null;
  private lastErrorAt = -Infinity;
  private readonly budget: LogBudget<BudgetKind>;

  constructor(private readonly opts: GroupCommitOptions<Item, Result>) {
    this.now = opts.now ?? (() => performance.now());
    this.budget = new LogBudget<BudgetKind>(opts.log.child({ op: opts.failure.op }), LOG_LINES_PER_INTERVAL, LOG_INTERVAL_MS);
  }

  /** which kind of window this queue keeps */
  get window(): CommitWindow {
    return this.opts.window ?? 'half';
  }

  /** How long a window lasts now, ms: from the oldest pending item to the start of its commit. */
  get windowMs(): number {
    const { flushMs } = this.opts;
    if (this.opts.window !== 'bound' || this.durations.length === 0) return flushMs / 2;
    return Math.max(0, flushMs - Math.max(...this.durations) - flushMs / 10);
  }

  /**
   * Takes `item` into the next commit; false (item not taken) once close() was called: nothing
   * would commit it (no timer runs after close, and the final flush may already be done), so the
   * caller must not count on it (sealed/connection.ts: no ack; the device sends it again).
   */
  enqueue(room: string, item: Item): boolean {
    if (this.closed) return false;
    const suspect = this.suspects.get(room);
    if (suspect) {
      suspect.items.push(item); // after the ones that fail: committed with them, in order
      return true;
    }
    const opens = this.pending.size === 0;
    if (opens) this.oldestAt = this.now();
    const list = this.pending.get(room);
    if (list) list.push(item);
    else this.pending.set(room, [item]);
    // A new window may end before the timer set for a room set aside.
    if (!this.running && (opens || !this.timer)) this.scheduleNext();
    return true;
  }

  /** Whether the room has items not committed yet: waiting, set aside, or in the round being written. */
  hasPending(room: string): boolean {
    return this.pending.has(room) || this.suspects.has(room) || this.writing.has(room);
  }

  /** Whether the room has items waiting for a commit (pending or set aside), not counting the round being written. */
  protected waiting(room: string): boolean {
    return this.pending.has(room) || this.suspects.has(room);
  }

  get size(): number {
    let n = 0;
    for (const list of this.pending.values()) n += list.length;
    for (const s of this.suspects.values()) n += s.items.length;
    return n;
  }

  /** Rooms set aside because their items fail alone (see above). */
  get setAside(): string[] {
    return [...this.suspects.keys()];
  }

  /**
   * Commits everything enqueued before the call, back-off or not; rejects if storage refuses any
   * of it. With `room`: commits only that room's items and rejects only if they fail (a room set
   * aside elsewhere does not fail a caller that needs another room stored: relay/room-loader.ts).
   */
  async flush(room?: string): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
    if (room === undefined ? this.pending.size === 0 && this.suspects.size === 0 : !this.hasPending(room)) return;
    let failed: Map<string, unknown> = new Map();
    const run = this.round(true, room).then((f) => {
      failed = f;
    });
    this.running = run;
    try {
      await run;
    } finally {
      this.running = null;
      if (!this.timer && !this.closed) this.scheduleNext();
    }
    const refused = room === undefined ? failed.values().next() : { done: !failed.has(room), value: failed.get(room) };
    if (!refused.done) throw refused.value;
  }

  /**
   * Forgets the room's items not yet being committed (the room was deleted): all of them, or only
   * those `drop` picks (the others keep their place); returns the ones forgotten.
   */
  discard(room: string, drop?: (item: Item) => boolean): Item[] {
    const suspect = this.suspects.get(room);
    const waiting = this.pending.get(room);
    if (!drop) {
      this.pending.delete(room);
      this.suspects.delete(room);
      return [...(suspect?.items ?? []), ...(waiting ?? [])];
    }
    const dropped: Item[] = [];
    const keep = (items: Item[]): Item[] => {
      const kept: Item[] = [];
      for (const item of items) (drop(item) ? dropped : kept).push(item);
      return kept;
    };
    if (suspect) {
      suspect.items = keep(suspect.items);
      if (suspect.items.length === 0) this.suspects.delete(room);
    }
    if (waiting) {
      const kept = keep(waiting);
      if (kept.length > 0) this.pending.set(room, kept);
      else this.pending.delete(room);
    }
    return dropped;
  }

  /** Resolves once no commit is in flight (a failed one has put its items back by then). */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  /** Stops the timer and refuses new items; pending items stay until a final flush(). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.budget.close();
  }

  /**
   * One round: the pending batch (once its back-off is over, or `force`d) and the set-aside rooms
   * due (all if `force`d), or only `only`'s items. Returns the rooms whose items failed, with
   * their error. Never rejects: every failure is counted, logged and its items kept.
   */
  private async round(force: boolean, only?: string): Promise<Map<string, unknown>> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const at = this.now();
    const writes: Write<Item>[] = [];
    const together = this.failedRounds < ISOLATE_AFTER;
    const takePending = only === undefined ? force || at >= this.retryAt : this.pending.has(only);
    if (takePending && this.pending.size > 0) {
      let batch: RoomBatch<Item>;
      if (only === undefined) {
        batch = [...this.pending];
        this.pending = new Map();
      } else {
        batch = [[only, this.pending.get(only) as Item[]]];
        this.pending.delete(only);
      }
      if (together) writes.push({ batch });
      else for (const entry of batch) writes.push({ batch: [entry] });
    }
    for (const [room, suspect] of this.suspects) {
      if (only !== undefined ? room !== only : !force && suspect.retryAt > at) continue;
      this.suspects.delete(room);
      writes.push({ batch: [[room, suspect.items]], suspect });
    }

    for (const write of writes) for (const [room] of write.batch) this.writing.add(room);
    const failedWrites: Array<[Write<Item>, unknown]> = [];
    let succeeded = 0;
    let spent = 0;
    let failedMs = 0;
    let untried: Write<Item>[] = [];
    for (const [i, write] of writes.entries()) {
      // Storage down (or hanging: each write may take the driver's whole timeout), not one room:
      // the rest of the round is not tried, so a round costs at most a few timeouts, not one per room.
      if (succeeded === 0 && failedWrites.length >= DOWN_AFTER_FAILURES && failedMs >= DOWN_AFTER_MS) {
        untried = writes.slice(i);
        break;
      }
      const end = this.opts.metrics.relayPersistSeconds.startTimer();
      const started = this.now();
      let result: Result;
      try {
        result = await this.opts.write(write.batch);
      } catch (err) {
        this.opts.metrics.storageErrors.inc({ op: this.opts.failure.op });
        failedWrites.push([write, err]);
        failedMs += this.now() - started;
        continue;
      }
      end();
      spent += this.now() - started;
      succeeded++;
      const { committed } = this.opts;
      if (committed) {
        for (const [index, [room, items]] of write.batch.entries()) {
          try {
            committed(room, items, result, index);
          } catch (err) {
            // a bug of ours: the other rooms are still told (acks, fan-out), and the round goes on
            this.opts.log.error({ err, room }, 'after-commit callback threw');
          }
        }
      }
    }
    if (failedWrites.length === 0 && writes.length > 0) this.timed(spent);

    const failed = new Map<string, unknown>();
    let requeued = false;
    for (const [write, err] of failedWrites) {
      for (const [room] of write.batch) failed.set(room, err);
      const [first] = write.batch;
      // Alone, while another write of the round went through: this room's items are refused,
      // not storage down. Already set aside: it stays so (storage down or not).
      if (write.suspect || (first && write.batch.length === 1 && succeeded > 0)) {
        this.setAsideRoom(first![0], first![1], write.suspect, err);
      } else {
        this.requeue(write.batch);
        requeued = true;
      }
    }
    const lastError = failedWrites.at(-1)?.[1];
    // Requeued last, so ahead of the failed ones: the next round tries them first (every room
    // gets its turn when a few rooms fail slowly ahead of it).
    for (const write of untried) {
      for (const [room] of write.batch) failed.set(room, lastError);
      if (write.suspect) {
        // still set aside, on its back-off; what arrived for it meanwhile went to `pending`
        const [room, items] = write.batch[0]!;
        const newer = this.pending.get(room) ?? [];
        this.pending.delete(room);
        const { failures } = write.suspect;
        this.suspects.set(room, { items: [...items, ...newer], failures, retryAt: this.now() + this.backoff(failures) });
      } else {
        this.requeue(write.batch);
        requeued = true;
      }
    }
    this.writing.clear();
    // One room flushed alone (relay/room-eviction.ts, room-loader.ts) says nothing of the batch.
    if (requeued && only === undefined) {
      this.failedRounds++;
      this.retryAt = this.now() + this.backoff(this.failedRounds);
    } else if (takePending && only === undefined) {
      this.failedRounds = 0;
      this.retryAt = 0;
    }
    this.reported(failedWrites, requeued);
    if (!this.closed) this.scheduleNext();
    return failed;
  }

  /** `items` failed alone: the room is written alone from now on, on its own back-off. */
  private setAsideRoom(room: string, items: Item[], before: Suspect<Item> | undefined, err: unknown): void {
    const failures = (before?.failures ?? 0) + 1;
    const newer = this.pending.get(room) ?? [];
    this.pending.delete(room);
    const later = this.suspects.get(room)?.items ?? []; // none: a room is in one write at a time
    this.suspects.set(room, { items: [...items, ...newer, ...later], failures, retryAt: this.now() + this.backoff(failures) });
    const fields = { err, room, items: items.length + newer.length, failures, retryInMs: this.backoff(failures) };
    if (before) this.budget.warn('set-aside room still failing', fields);
    else this.budget.warn('room set aside: its items fail alone, the others commit', fields);
  }

  /** The log for a round: one error line when failures start, the budget after, info when over. */
  private reported(failedWrites: Array<[Write<Item>, unknown]>, requeued: boolean): void {
    if (failedWrites.length > 0) {
      const first = failedWrites[0]!;
      const rooms = failedWrites.reduce((n, [w]) => n + w.batch.length, 0);
      const at = this.now();
      const fields = { err: first[1], rooms, failedInARow: this.failedRounds, retryInMs: requeued ? this.backoff(this.failedRounds) : undefined };
      if (!this.failingSince && at - this.lastErrorAt >= LOG_INTERVAL_MS) {
        this.lastErrorAt = at;
        this.opts.log.error(fields, this.opts.failure.message);
      } else if (requeued) {
        this.budget.warn('commit still failing', fields);
      }
      this.failingSince ??= { at, failures: 0 };
      this.failingSince.failures += failedWrites.length;
    } else if (this.failingSince && this.suspects.size === 0 && this.failedRounds === 0) {
      const { at, failures } = this.failingSince;
      this.failingSince = null;
      this.opts.log.info({ op: this.opts.failure.op, failures, failingMs: Math.round(this.now() - at) }, 'commits succeed again; nothing pending is failing');
    }
  }

  /** the wait after `failures` failures in a row, ms */
  private backoff(failures: number): number {
    const base = this.opts.retryMs ?? DEFAULT_RETRY_MS;
    const max = Math.max(base, this.opts.retryMaxMs ?? DEFAULT_RETRY_MAX_MS);
    return Math.min(max, base * 2 ** Math.min(30, Math.max(0, failures - 1)));
  }

  private requeue(batch: RoomBatch<Item>): void {
    const newer = this.pending;
    this.pending = new Map(batch.map(([room, items]) => [room, [...items]]));
    for (const [room, items] of newer) {
      const list = this.pending.get(room);
      if (list) list.push(...items);
      else this.pending.set(room, items);
    }
    this.oldestAt = this.now();
  }

  private timed(ms: number): void {
    if (this.opts.window !== 'bound') return;
    this.durations[this.nextDuration] = ms;
    this.nextDuration = (this.nextDuration + 1) % COMMIT_HISTORY;
  }

  /** When the next round is due: the pending window (or its back-off) or a set-aside room's retry. */
  private scheduleNext(): void {
    const at = this.now();
    let next = Infinity;
    if (this.pending.size > 0) next = Math.max(this.oldestAt + this.windowMs, this.retryAt);
    for (const s of this.suspects.values()) next = Math.min(next, s.retryAt);
    if (next === Infinity) return;
    const ms = Math.max(0, next - at);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.running) return; // the run's end schedules again
      const run = this.round(false).then(
        () => undefined,
        () => undefined, // round() counts and logs its failures
      );
      this.running = run;
      void run.finally(() => {
        if (this.running === run) this.running = null;
      });
    }, ms);
  }
}

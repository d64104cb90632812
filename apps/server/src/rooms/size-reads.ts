/**
 * ROOM_MAX_BYTES across instances, for relay and sealed rooms (relay/room-registry.ts,
 * sealed/registry.ts). Another instance's compaction or snapshot folds what this one counted
 * without a word, so a room's size is read from storage again once the bytes counted since pass
 * MEASURE_EVERY of the quota: one read per room at a time, off the hot path, and a read started
 * later (or forget(), after a compaction here) makes the answer of one under way stale.
 */

/** The share of ROOM_MAX_BYTES counted since the last read after which the size is read again. */
export const MEASURE_EVERY = 1 / 16;

export class SizeReads<R extends object> {
  /** rooms whose size is being read, each with its read's token */
  private readonly reads = new WeakMap<R, symbol>();

  /** Whether `counted` bytes since the last read call for a read now (none under way, a quota set). */
  due(room: R, counted: number, max: number | undefined): boolean {
    return max !== undefined && counted >= max * MEASURE_EVERY && !this.reads.has(room);
  }

  /**
   * Reads the size (`read`) and hands it to `apply` unless a later read or forget() came between.
   * The returned promise rejects with the read's failure (the caller reports it).
   */
  async read<T>(room: R, read: () => Promise<T>, apply: (result: T) => void): Promise<void> {
    const token = Symbol('size read');
    this.reads.set(room, token);
    try {
      const result = await read();
      if (this.reads.get(room) === token) apply(result);
    } finally {
      if (this.reads.get(room) === token) this.reads.delete(room);
    }
  }

  /** A read under way may have seen what is stale now (a compaction here): its answer is dropped. */
  forget(room: R): void {
    this.reads.delete(room);
  }
}

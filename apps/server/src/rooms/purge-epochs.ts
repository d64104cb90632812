/**
 * Which rooms were deleted since a moment, for the registries (relay/room-registry.ts,
 * sealed/registry.ts): a load or compaction that started before an admin delete of its room must
 * not bring the room back. Every delete draws the next number of one counter; a reader takes the
 * counter (`mark`) when it starts and asks, before it commits to what it read, whether its room
 * was deleted since (`unchanged`).
 *
 * Bounded: the most recent `max` deleted rooms are remembered exactly; an older one is folded
 * into `floor` (the highest number forgotten), and a room not remembered counts as deleted at
 * `floor`. So forgetting errs one way only: a reader that started before a forgotten delete (of
 * any room) reads again or skips its compaction, never keeps what a delete removed.
 */

/** rooms remembered exactly; each costs its name and a number (admin deletes are rare) */
export const PURGE_EPOCHS_MAX = 10_000;

export class PurgeEpochs {
  private counter = 0;
  private floor = 0;
  /** room -> number of its last delete, oldest first (re-inserted on each delete) */
  private readonly last = new Map<string, number>();

  constructor(private readonly max = PURGE_EPOCHS_MAX) {}

  /** Now, for a later `unchanged`. */
  mark(): number {
    return this.counter;
  }

  /** A delete of `room` begins. */
  bump(room: string): void {
    this.counter++;
    this.last.delete(room);
    this.last.set(room, this.counter);
    for (const [oldest, n] of this.last) {
      if (this.last.size <= this.max) break;
      this.last.delete(oldest);
      this.floor = n;
    }
  }

  /** Whether no delete of `room` began since `mark` (false too when that is no longer known). */
  unchanged(room: string, mark: number): boolean {
    return (this.last.get(room) ?? this.floor) <= mark;
  }

  /** rooms remembered */
  get size(): number {
    return this.last.size;
  }
}

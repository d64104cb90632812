/**
 * How an idle relay room leaves memory (rooms/lifecycle.ts: idle -> evicting -> closed). Once its
 * last connection has been gone for ROOM_IDLE_MS, what it accepted is committed first, with the
 * room still reachable: a connection arriving meanwhile simply keeps it (evicting -> open). Then
 * it is closed and its log folded into a snapshot from its last live state.
 */
import type { Held, RoomEvent } from '../rooms/lifecycle.js';
import type { LiveState } from './compaction.js';
import type { FlushQueue } from './persistence/flush-queue.js';
import type { Room } from './room.js';

export interface RoomEvictionDeps {
  idleMs: number;
  persist: Pick<FlushQueue, 'hasPending' | 'flush'>;
  /** the registry's transition (relay/room-registry.ts) */
  move(held: Held<Room>, event: RoomEvent): void;
  /** after the room left memory: fold its stored log with its last live state */
  compact(room: string, last: LiveState | null): Promise<unknown>;
  /** runs a background task (awaited at shutdown) */
  track(task: Promise<unknown>): void;
}

export class RoomEviction {
  constructor(private readonly deps: RoomEvictionDeps) {}

  /** The room turned idle: evict it after ROOM_IDLE_MS. */
  schedule(held: Held<Room>): void {
    this.cancel(held);
    held.idleTimer = setTimeout(() => {
      held.idleTimer = null;
      if (held.state !== 'idle') return;
      this.deps.move(held, 'idle-timeout');
      this.deps.track(this.evict(held));
    }, this.deps.idleMs);
  }

  /** The room is no longer idle. */
  cancel(held: Held<Room>): void {
    if (held.idleTimer) clearTimeout(held.idleTimer);
    held.idleTimer = null;
  }

  private async evict(held: Held<Room>): Promise<void> {
    // Joined (open) or deleted (closed) meanwhile: the eviction stops there.
    while (this.deps.persist.hasPending(held.name)) {
      try {
        await this.deps.persist.flush(held.name);
      } catch {
        // Storage failing: keep the room (back to idle, so the timer tries again later).
        if (held.state === 'evicting') this.deps.move(held, 'flush-failed');
        return;
      }
      if (held.state !== 'evicting') return;
    }
    if (held.state !== 'evicting' || !held.room) return;
    const last = held.room.liveState(); // the document is freed on close
    this.deps.move(held, 'unloaded');
    await this.deps.compact(held.name, last);
  }
}

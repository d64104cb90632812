/**
 * The rooms a registry holds (relay/room-registry.ts, sealed/registry.ts), by name, each with its
 * lifecycle state (rooms/lifecycle.ts). The one place a state changes (`move`: the transition
 * table, then the registry's hooks for entering a state), the one read shared by every
 * connection that arrives while a room loads, and the rooms in memory, for reading.
 */
import { isHeld, onArrival, transition, type Held, type RoomEvent, type RoomState } from './lifecycle.js';

export interface RoomTableHooks<R> {
  /**
   * Reads the room; ends with `table.loaded(held, room)` (synchronously after checking that the
   * read still stands), or rejects. The room is `loading` meanwhile.
   */
  load(held: Held<R>): Promise<void>;
  /** loading -> open: the room is in memory */
  opened(held: Held<R>, room: R): void;
  /** -> closed: `room` is null when it never got in memory */
  closed(held: Held<R>, room: R | null): void;
  /** -> idle: start the idle timer */
  idle(held: Held<R>): void;
  /** idle -> anything else */
  busy(held: Held<R>): void;
  /** after every transition (for observers) */
  moved?(held: Held<R>, event: RoomEvent): void;
  /** the connections the room holds now (for `join`'s room-full check) */
  connections(room: R): number;
}

export class RoomTable<R> {
  /** the rooms in memory (open, idle or evicting); changed only by `move` */
  readonly rooms = new Map<string, R>();
  private readonly held = new Map<string, Held<R>>();
  /** the read in flight of each loading room */
  private readonly loads = new Map<string, Promise<void>>();

  constructor(private readonly hooks: RoomTableHooks<R>) {}

  /** The lifecycle state of the room (undefined: not held here). */
  stateOf(name: string): RoomState | undefined {
    return this.held.get(name)?.state;
  }

  get(name: string): Held<R> | undefined {
    return this.held.get(name);
  }

  /** The state of this very room (not a newer one of the same name), when it is in memory. */
  heldFor(name: string, room: R): Held<R> | undefined {
    const held = this.held.get(name);
    return held && held.room === room && isHeld(held.state) ? held : undefined;
  }

  all(): Held<R>[] {
    return [...this.held.values()];
  }

  /**
   * A connection arrives: once the room is in memory (loaded first, or after the load in flight),
   * it joins (`enter` runs synchronously with the room moved `joined`), unless the room already
   * holds `max` connections: then `full()` is thrown, and a room left open with no connection
   * goes idle, so that its idle timer runs.
   */
  join(name: string, max: number, full: () => Error, enter: (room: R) => void): Promise<R> {
    return this.arrive(name, (held, room) => {
      const size = this.hooks.connections(room);
      if (size >= max) {
        if (size === 0 && held.state === 'open') this.move(held, 'emptied');
        throw full();
      }
      this.move(held, 'joined');
      enter(room);
    });
  }

  /** Once the room is in memory (loaded first, or after the load in flight), runs `enter` with it. */
  private async arrive(name: string, enter: (held: Held<R>, room: R) => void): Promise<R> {
    for (;;) {
      const held = this.held.get(name);
      const arrival = onArrival(held?.state);
      if (arrival === 'wait') await this.loads.get(name);
      if (arrival === 'load') await this.startLoad(name);
      if (arrival !== 'join' || !held?.room) continue; // look again: the load may have been thrown away
      enter(held, held.room);
      return held.room;
    }
  }

  /** The read of a loading room stands: it is in memory now. */
  loaded(held: Held<R>, room: R): void {
    held.room = room;
    this.move(held, 'loaded');
  }

  /** Applies `event` (throws IllegalTransition where the table does not allow it: a bug). */
  move(held: Held<R>, event: RoomEvent): void {
    const from = held.state;
    const to = transition(held.name, from, event);
    held.state = to;
    if (from === 'idle' && to !== 'idle') this.hooks.busy(held);
    if (to === 'idle' && from !== 'idle') this.hooks.idle(held);
    if (from === 'loading' && to === 'open' && held.room) {
      this.rooms.set(held.name, held.room);
      this.hooks.opened(held, held.room);
    }
    if (to === 'closed') {
      if (this.held.get(held.name) === held) this.held.delete(held.name);
      const room = from === 'loading' ? null : held.room;
      if (room) this.rooms.delete(held.name);
      this.hooks.closed(held, room);
    }
    this.hooks.moved?.(held, event);
  }

  private startLoad(name: string): Promise<void> {
    const held: Held<R> = { name, state: 'loading', room: null, idleTimer: null };
    this.held.set(name, held);
    const pending = this.hooks
      .load(held)
      .catch((err: unknown) => {
        if (held.state === 'loading') this.move(held, 'load-failed');
        throw err;
      })
      .finally(() => this.loads.delete(name));
    this.loads.set(name, pending);
    return pending;
  }
}

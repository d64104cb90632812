/**
 * What other instances tell about the rooms this one holds, for the registry: subscribes a room
 * before it is read from storage, holds back what arrives until it is loaded, then hands each
 * event to the room (Room.applyRemote). A room whose remote update fails to apply is reloaded;
 * after a fan-out outage, when asked (a commit too large for the bus, or one that could not be
 * published), or when a remote update was refused here, a room re-reads its stored state. At
 * most one read per room runs at a time, and the asks meanwhile make one more after it.
 *
 * A remote update names the generation it was committed in (fanout/bus-frame.ts RelayUpdateAt):
 * one of the room's is applied; a higher one means this instance missed a delete: the room
 * re-reads storage, finds it moved and is dropped (`moved`); a lower one was committed before a
 * delete and published after: dropped (`stale`).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import type { RemoteEvent, RoomFanout } from './fanout.js';
import type { DocStore } from './persistence/types.js';
import type { Room } from './room.js';

export interface RemoteIntakeOptions {
  fanout: RoomFanout;
  store: DocStore;
  /** the rooms in memory (the registry's) */
  rooms: ReadonlyMap<string, Room>;
  /** evict the room and close its connections so they resync from a fresh load */
  reload(room: Room): void;
  /** a re-read found storage in another generation than the room's: the room was deleted (purged) since it loaded */
  moved(room: Room): void;
  /** updates of `generation`, below the room's, were dropped (committed before a delete, published after) */
  stale(room: Room, generation: number): void;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
}

export class RemoteIntake {
  /** rooms being read from storage, with what other instances told meanwhile */
  private readonly arriving = new Map<string, RemoteEvent[]>();
  /** rooms re-reading storage now, and whether to read once more after (asked meanwhile) */
  private readonly rereading = new Map<Room, boolean>();

  constructor(private readonly opts: RemoteIntakeOptions) {
    opts.fanout.onResync(() => this.catchUp());
  }

  /** Before the room is read from storage: listen, and hold back what arrives. */
  async subscribe(name: string): Promise<void> {
    this.arriving.set(name, []);
    await this.opts.fanout.subscribe(name, (event) => this.received(name, event));
  }

  /** The room is in memory: apply what arrived while it loaded (updates checked against the generation it loaded in). */
  loaded(name: string): void {
    const arrived = this.arriving.get(name) ?? [];
    this.arriving.delete(name);
    for (const event of arrived) this.received(name, event, true);
  }

  /** The room left memory, or failed to load. */
  unsubscribe(name: string): void {
    this.arriving.delete(name);
    this.opts.fanout.unsubscribe(name);
  }

  /** `heldBack`: it arrived while the room was read from storage (Room.applyRemote) */
  private received(name: string, event: RemoteEvent, heldBack = false): void {
    const pending = this.arriving.get(name);
    if (pending) return void pending.push(event);
    const room = this.opts.rooms.get(name);
    if (!room || room.unloaded) return;
    if (event.kind === 'reload') return this.reread(room);
    if (event.kind === 'update') {
      const told = event.generation;
      // 0 or not told (an instance of the version before): applied in generation 0, where no
      // delete came before; above it, storage says what is the room's (a committed update is there).
      if (told === undefined ? room.generation !== 0 : told > room.generation) return this.reread(room);
      // Of a life a delete ended: never applied (its next compaction would store it in this one).
      if (told !== undefined && told < room.generation) return this.opts.stale(room, told);
    }
    try {
      // Refused (reported): never dropped, storage holds it (it was committed before it was published).
      if (!room.applyRemote(event.kind === 'update' ? { kind: 'message', payload: event.payload } : event, event.kind === 'update', heldBack)) this.reread(room);
    } catch (err) {
      // A remote update that fails to apply leaves the document suspect: reload the room.
      this.opts.log.error({ err, room: name }, 'update from another instance failed to apply; evicting the room');
      this.opts.reload(room);
    }
  }

  /** After a fan-out outage: every held room re-reads storage for what it may have missed. */
  private catchUp(): void {
    for (const room of this.opts.rooms.values()) this.reread(room);
  }

  private reread(room: Room): void {
    if (this.rereading.has(room)) return void this.rereading.set(room, true);
    this.rereading.set(room, false);
    this.opts.store
      .load(room.name)
      .then((stored) => {
        if (room.unloaded) return;
        // Deleted on another instance while this one did not hear (a fan-out outage): the stored
        // state is the new room's, and this one's document must not be served or stored any more.
        if (stored.generation !== room.generation) return this.opts.moved(room);
        room.applyStoredState(stored);
      })
      .catch((err: unknown) => {
        this.opts.metrics.storageErrors.inc({ op: 'load' });
        this.opts.log.warn({ err, room: room.name }, 'relay catch-up read failed');
      })
      .finally(() => {
        const again = this.rereading.get(room) === true;
        this.rereading.delete(room);
        if (again && !room.unloaded) this.reread(room);
      });
  }
}

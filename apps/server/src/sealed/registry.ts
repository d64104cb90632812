/**
 * The sealed rooms held in memory, each with its lifecycle state (rooms/lifecycle.ts). A room
 * loads on its first connection (its head and stored entry count from storage; all connections
 * of that moment wait for the same load) and unloads once its last connection has been gone for
 * ROOM_IDLE_MS (nothing to commit first: commits go on without the room, see `committed`).
 * Commits go through one group-commit queue; once committed, entries reach the room (acks,
 * fan-out) and the other instances. Every state change goes through the table (rooms/room-table.ts).
 */
import type { FastifyBaseLogger } from 'fastify';
import { Errors } from '@sync-suite/shared';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { SealedCommitQueue, type PendingEnvelope } from './commit-queue.js';
import { isHeld, type Held, type RoomState } from '../rooms/lifecycle.js';
import { RoomTable } from '../rooms/room-table.js';
import { PurgeEpochs } from '../rooms/purge-epochs.js';
import type { SealedFanout } from './fanout.js';
import { SealedRemote } from './remote-intake.js';
import { SealedRoom, type SealedPeer } from './room.js';
import { SEALED_ROW_OVERHEAD_BYTES, type SealedGeneration, type SealedStore } from './store/types.js';
import type { RoomChanges } from '../webhooks/room-changes.js';

/** Entries a gap fill reads from storage at once (after a Redis outage the gap may be long). */
const GAP_FILL_PAGE = 256;

export interface SealedRegistryOptions {
  store: SealedStore;
  fanout: SealedFanout;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  flushMs: number;
  idleMs: number;
  snapshotAfter: number;
  maxPeersPerRoom: number;
  /** told of every commit (webhooks); never waits */
  changes?: RoomChanges;
}

export class SealedRoomFullError extends Error {
  constructor(room: string) {
    super(`room ${room} is full`);
    this.name = 'SealedRoomFullError';
  }
}

export class SealedRegistry {
  /** every room held here, loading or in memory, with its lifecycle state */
  private readonly table: RoomTable<SealedRoom>;
  /** the rooms in memory (open, idle or evicting), for reading */
  readonly rooms: ReadonlyMap<string, SealedRoom>;
  readonly queue: SealedCommitQueue;
  /** rooms being deleted: loads wait for the purge */
  private readonly purging = new Map<string, Promise<number>>();
  /** each delete's mark: a load that read storage before it reads again (bounded) */
  private readonly purges = new PurgeEpochs();
  /** snapshots being stored: a delete waits for them, so none writes old data back */
  private readonly snapshots = new Set<Promise<unknown>>();
  /** what this instance tells the others, and what they tell */
  private readonly remote: SealedRemote;

  constructor(readonly opts: SealedRegistryOptions) {
    this.table = new RoomTable<SealedRoom>({
      load: (held) => this.load(held),
      opened: (_held, room) => {
        this.opts.metrics.sealedRooms.inc();
        this.remote.loaded(room);
      },
      closed: (held, room) => {
        if (!room) return;
        room.unloaded = true;
        this.opts.metrics.sealedRooms.dec();
        this.remote.unsubscribe(held.name);
      },
      idle: (held) => this.scheduleUnload(held),
      busy: (held) => {
        if (held.idleTimer) clearTimeout(held.idleTimer);
        held.idleTimer = null;
      },
      connections: (room) => room.conns.size,
    });
    this.rooms = this.table.rooms;
    this.remote = new SealedRemote({ fanout: opts.fanout, rooms: this.rooms, log: opts.log });
    this.queue = new SealedCommitQueue(opts.store, {
      flushMs: opts.flushMs,
      metrics: opts.metrics,
      log: opts.log,
      onCommitted: (room, firstSeq, items) => this.committed(room, firstSeq, items),
    });
  }

  get store(): SealedStore {
    return this.opts.store;
  }

  /** The lifecycle state of the room (undefined: not held here). */
  stateOf(name: string): RoomState | undefined {
    return this.table.stateOf(name);
  }

  join(name: string, conn: SealedPeer): Promise<SealedRoom> {
    return this.table.join(name, this.opts.maxPeersPerRoom, () => new SealedRoomFullError(name), (room) => room.join(conn));
  }

  leave(room: SealedRoom, conn: SealedPeer): void {
    room.leave(conn);
    this.remote.peerLeft(room.name, conn.peer);
    const held = this.table.heldFor(room.name, room);
    if (held && room.conns.size === 0 && held.state === 'open') this.table.move(held, 'emptied');
  }

  /** A connection's presence: kept by the room for later joiners, and told to the other instances. */
  presence(room: SealedRoom, peer: number, envelope: Uint8Array): void {
    room.setPresence(peer, envelope);
    this.remote.presence(room.name, peer, envelope);
  }

  /**
   * The room's generation and the one its last purge ended (store.generation: made with the
   * room's row if it has none), read once per load and shared by the connections asking
   * meanwhile. A delete unloads the room, so the next load reads the new ones.
   */
  generation(room: SealedRoom): Promise<SealedGeneration> {
    if (room.generation) return Promise.resolve(room.generation);
    room.generationRead ??= this.opts.store.generation(room.name).then(
      (generation) => {
        if (!room.unloaded) room.generation = generation;
        room.generationRead = null;
        return generation;
      },
      (err: unknown) => {
        room.generationRead = null;
        throw err;
      },
    );
    return room.generationRead;
  }

  /** Stores a device's snapshot; a delete of the room waits for it (see purge). */
  storeSnapshot(room: string, covers: number, envelope: Uint8Array): Promise<boolean> {
    const run = this.opts.store.replaceWithSnapshot(room, covers, envelope);
    this.snapshots.add(run);
    void run.finally(() => this.snapshots.delete(run)).catch(() => undefined);
    return run;
  }

  /** After a snapshot: the stored size from storage (ROOM_MAX_BYTES), off the hot path. */
  refreshStoredBytes(room: SealedRoom): void {
    this.opts.store.stats(room.name).then(
      (stats) => {
        if (!room.unloaded) room.storedBytes = stats.bytes;
      },
      (err: unknown) => this.opts.log.warn({ err, room: room.name }, 'sealed room size could not be read'),
    );
  }

  /**
   * Deletes the room on this instance: closes its sockets with 4410, drops its uncommitted
   * envelopes, waits for running commits and snapshots (so none writes old data back), then
   * deletes what is stored. Loads of the room wait meanwhile (one in flight reads again after).
   * Resolves with the sockets closed.
   */
  purge(name: string, endGeneration = true): Promise<number> {
    const run = this.purgeNow(name, endGeneration);
    this.purging.set(name, run);
    void run.finally(() => {
      if (this.purging.get(name) === run) this.purging.delete(name);
    }).catch(() => undefined);
    return run;
  }

  private async purgeNow(name: string, endGeneration: boolean): Promise<number> {
    await this.purging.get(name)?.catch(() => undefined);
    this.purges.bump(name);
    const held = this.table.get(name);
    const room = held?.room ?? null;
    const conns = held?.room && isHeld(held.state) ? [...held.room.conns.values()] : [];
    if (held) this.table.move(held, 'deleted'); // a loading room stays loading and reads again
    const { closeCode, message } = Errors.ERR_ROOM_DELETED;
    for (const conn of conns) conn.close(closeCode, message);
    // what is dropped no longer counts for ROOM_MAX_BYTES (pendingBytes)
    releasePending(room, this.queue.discard(name));
    await this.queue.idle();
    releasePending(room, this.queue.discard(name)); // a failed commit put them back
    await Promise.all([...this.snapshots].map((s) => s.catch(() => undefined)));
    await this.opts.store.purgeRoom(name, endGeneration);
    return conns.length;
  }

  /** Shutdown, phase drain: commit everything accepted. */
  async drain(): Promise<void> {
    this.queue.close();
    await this.queue.flush();
    // Acks and entries of that last commit are written at the end of the turn (ws/turn-output.ts):
    // let that happen before the sockets phase closes them with 1012.
    await new Promise((resolve) => setImmediate(resolve));
  }

  close(): void {
    this.queue.close();
    for (const held of this.table.all()) this.table.move(held, 'shutdown');
  }

  /** Idle for ROOM_IDLE_MS: evicted at once (nothing to commit first). */
  private scheduleUnload(held: Held<SealedRoom>): void {
    held.idleTimer = setTimeout(() => {
      held.idleTimer = null;
      if (held.state !== 'idle') return;
      this.table.move(held, 'idle-timeout');
      this.table.move(held, 'unloaded');
    }, this.opts.idleMs);
    held.idleTimer.unref();
  }

  private committed(name: string, firstSeq: number, items: readonly PendingEnvelope[]): void {
    const envelopes = items.map((i) => i.envelope);
    this.opts.changes?.changed(name, items.length);
    this.remote.entries(name, firstSeq, envelopes);
    const room = this.rooms.get(name);
    if (!room || room.unloaded) return;
    releasePending(room, items);
    items.forEach((item, i) => item.ack && room.expectAck(firstSeq + i, item.ack));
    room.deliver(envelopes.map((envelope, i) => ({ seq: firstSeq + i, envelope })));
  }

  private async load(held: Held<SealedRoom>): Promise<void> {
    const { name } = held;
    const { store } = this.opts;
    try {
      await this.remote.subscribe(name);
      let stats;
      for (;;) {
        await this.purging.get(name)?.catch(() => undefined);
        const mark = this.purges.mark();
        stats = await store.stats(name);
        if (held.state !== 'loading') throw new Error(`sealed room ${name} was closed while it loaded`);
        // A delete started while we read: what we read may be gone; read again after it.
        if (this.purges.unchanged(name, mark) && !this.purging.has(name)) break;
      }
      const room = new SealedRoom(name, stats.head, stats.entries, {
        readAfter: (r, head) => store.read(r, head, GAP_FILL_PAGE),
        snapshotAfter: this.opts.snapshotAfter,
        onGapFillFailed: (r, err) => {
          this.opts.metrics.storageErrors.inc({ op: 'sealed_read' });
          this.opts.log.warn({ err, room: r }, 'sealed gap fill failed');
        },
      });
      room.storedBytes = stats.bytes;
      this.table.loaded(held, room);
    } catch (err) {
      this.remote.unsubscribe(name);
      throw err;
    }
  }
}

/** Takes back what connection.update charged to pendingBytes for `items` (committed or dropped). */
function releasePending(room: SealedRoom | null, items: readonly PendingEnvelope[]): void {
  if (!room || items.length === 0) return;
  room.pendingBytes = Math.max(0, room.pendingBytes - items.reduce((n, i) => n + i.envelope.length + SEALED_ROW_OVERHEAD_BYTES, 0));
}

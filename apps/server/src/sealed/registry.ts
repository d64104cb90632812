/**
 * The sealed rooms held in memory, each with its lifecycle state (rooms/lifecycle.ts). A room
 * loads on its first connection (its head and stored entry count from storage; all connections
 * of that moment wait for the same load) and unloads once its last connection has been gone for
 * ROOM_IDLE_MS (nothing to commit first: commits go on without the room, see `committed`).
 * Commits go through one group-commit queue; once committed, entries reach the room (acks,
 * fan-out) and the other instances. Every state change goes through `move`.
 */
import type { FastifyBaseLogger } from 'fastify';
import { Errors } from '@sync-suite/shared';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { SealedCommitQueue, type PendingEnvelope } from './commit-queue.js';
import { isHeld, onArrival, transition, type Held, type RoomEvent, type RoomState } from '../rooms/lifecycle.js';
import type { SealedFanout } from './fanout.js';
import { SealedRemote } from './remote-intake.js';
import { SealedRoom, type SealedPeer } from './room.js';
import type { SealedStore } from './store/types.js';
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
  /** the rooms in memory (open, idle or evicting), for reading; changed only by `move` */
  readonly rooms = new Map<string, SealedRoom>();
  readonly queue: SealedCommitQueue;
  /** every room name held here, loading or in memory, with its state */
  private readonly held = new Map<string, Held<SealedRoom>>();
  /** the read in flight of each loading room */
  private readonly loads = new Map<string, Promise<SealedRoom>>();
  /** rooms being deleted: loads wait for the purge */
  private readonly purging = new Map<string, Promise<number>>();
  /** bumped by each delete: a load that read storage before it reads again */
  private readonly purges = new Map<string, number>();
  /** snapshots being stored: a delete waits for them, so none writes old data back */
  private readonly snapshots = new Set<Promise<unknown>>();
  /** what this instance tells the others, and what they tell */
  private readonly remote: SealedRemote;

  constructor(readonly opts: SealedRegistryOptions) {
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
    return this.held.get(name)?.state;
  }

  async join(name: string, conn: SealedPeer): Promise<SealedRoom> {
    for (;;) {
      const held = this.held.get(name);
      const arrival = onArrival(held?.state);
      if (arrival === 'wait') await this.loads.get(name);
      if (arrival === 'load') await this.startLoad(name);
      if (arrival !== 'join' || !held?.room) continue; // look again: the load may have been thrown away
      const room = held.room;
      if (room.conns.size >= this.opts.maxPeersPerRoom) {
        if (room.conns.size === 0 && held.state === 'open') this.move(held, 'emptied');
        throw new SealedRoomFullError(name);
      }
      this.move(held, 'joined');
      room.join(conn);
      return room;
    }
  }

  leave(room: SealedRoom, conn: SealedPeer): void {
    room.leave(conn);
    this.remote.peerLeft(room.name, conn.peer);
    const held = this.heldFor(room);
    if (held && room.conns.size === 0 && held.state === 'open') this.move(held, 'emptied');
  }

  /** A connection's presence: kept by the room for later joiners, and told to the other instances. */
  presence(room: SealedRoom, peer: number, envelope: Uint8Array): void {
    room.setPresence(peer, envelope);
    this.remote.presence(room.name, peer, envelope);
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
  purge(name: string): Promise<number> {
    const run = this.purgeNow(name);
    this.purging.set(name, run);
    void run.finally(() => {
      if (this.purging.get(name) === run) this.purging.delete(name);
    }).catch(() => undefined);
    return run;
  }

  private async purgeNow(name: string): Promise<number> {
    await this.purging.get(name)?.catch(() => undefined);
    this.purges.set(name, (this.purges.get(name) ?? 0) + 1);
    const held = this.held.get(name);
    const conns = held?.room && isHeld(held.state) ? [...held.room.conns.values()] : [];
    if (held) this.move(held, 'deleted'); // a loading room stays loading and reads again
    const { closeCode, message } = Errors.ERR_ROOM_DELETED;
    for (const conn of conns) conn.close(closeCode, message);
    this.queue.discard(name);
    await this.queue.idle();
    this.queue.discard(name); // a failed commit put them back
    await Promise.all([...this.snapshots].map((s) => s.catch(() => undefined)));
    await this.opts.store.purgeRoom(name);
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
    for (const held of [...this.held.values()]) this.move(held, 'shutdown');
  }

  /**
   * The one place a room changes state: the transition table (rooms/lifecycle.ts) says whether
   * `event` is allowed (a disallowed one throws: a bug), and entering a state has its effects.
   */
  private move(held: Held<SealedRoom>, event: RoomEvent): void {
    const from = held.state;
    const to = transition(held.name, from, event);
    held.state = to;
    if (from === 'idle' && to !== 'idle' && held.idleTimer) {
      clearTimeout(held.idleTimer);
      held.idleTimer = null;
    }
    if (to === 'idle' && from !== 'idle') this.scheduleUnload(held);
    if (from === 'loading' && to === 'open' && held.room) {
      this.rooms.set(held.name, held.room);
      this.opts.metrics.sealedRooms.inc();
      this.remote.loaded(held.room);
    }
    if (to === 'closed') this.closedRoom(held, from);
  }

  private closedRoom(held: Held<SealedRoom>, from: RoomState): void {
    if (this.held.get(held.name) === held) this.held.delete(held.name);
    const room = held.room;
    if (!room || from === 'loading') return;
    room.unloaded = true;
    this.rooms.delete(held.name);
    this.opts.metrics.sealedRooms.dec();
    this.remote.unsubscribe(held.name);
  }

  /** Idle for ROOM_IDLE_MS: evicted at once (nothing to commit first). */
  private scheduleUnload(held: Held<SealedRoom>): void {
    held.idleTimer = setTimeout(() => {
      held.idleTimer = null;
      if (held.state !== 'idle') return;
      this.move(held, 'idle-timeout');
      this.move(held, 'unloaded');
    }, this.opts.idleMs);
    held.idleTimer.unref();
  }

  /** The state of this very room (not a newer one of the same name), when it is in memory. */
  private heldFor(room: SealedRoom): Held<SealedRoom> | undefined {
    const held = this.held.get(room.name);
    return held && held.room === room && isHeld(held.state) ? held : undefined;
  }

  private committed(name: string, firstSeq: number, items: readonly PendingEnvelope[]): void {
    const envelopes = items.map((i) => i.envelope);
    this.opts.changes?.changed(name, items.length);
    this.remote.entries(name, firstSeq, envelopes);
    const room = this.rooms.get(name);
    if (!room || room.unloaded) return;
    room.pendingBytes = Math.max(0, room.pendingBytes - envelopes.reduce((n, e) => n + e.length, 0));
    items.forEach((item, i) => item.ack && room.expectAck(firstSeq + i, item.ack));
    room.deliver(envelopes.map((envelope, i) => ({ seq: firstSeq + i, envelope })));
  }

  private startLoad(name: string): Promise<SealedRoom> {
    const held: Held<SealedRoom> = { name, state: 'loading', room: null, idleTimer: null };
    this.held.set(name, held);
    const pending = this.load(held).finally(() => this.loads.delete(name));
    this.loads.set(name, pending);
    return pending;
  }

  private async load(held: Held<SealedRoom>): Promise<SealedRoom> {
    const { name } = held;
    const { store } = this.opts;
    try {
      await this.remote.subscribe(name);
      let stats;
      for (;;) {
        await this.purging.get(name)?.catch(() => undefined);
        const epoch = this.purges.get(name) ?? 0;
        stats = await store.stats(name);
        if (held.state !== 'loading') throw new Error(`sealed room ${name} was closed while it loaded`);
        // A delete started while we read: what we read may be gone; read again after it.
        if ((this.purges.get(name) ?? 0) === epoch && !this.purging.has(name)) break;
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
      held.room = room;
      this.move(held, 'loaded');
      return room;
    } catch (err) {
      if (held.state === 'loading') this.move(held, 'load-failed');
      this.remote.unsubscribe(name);
      throw err;
    }
  }
}

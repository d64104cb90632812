/**
 * The sealed rooms held in memory. A room loads on its first connection (its head and stored
 * entry count from storage; all connections of that moment wait for the same load) and unloads
 * once its last connection has been gone for ROOM_IDLE_MS. Commits go through one group-commit
 * queue; once committed, entries reach the room (acks, fan-out) and the other instances.
 */
import type { FastifyBaseLogger } from 'fastify';
import { Errors } from '@sync-suite/shared';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { SealedCommitQueue, type PendingEnvelope } from './commit-queue.js';
import type { SealedFanout } from './fanout.js';
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
  readonly rooms = new Map<string, SealedRoom>();
  readonly queue: SealedCommitQueue;
  private readonly loading = new Map<string, Promise<SealedRoom>>();
  /** rooms being deleted: loads wait for the purge */
  private readonly purging = new Map<string, Promise<number>>();
  /** bumped by each delete: a load that read storage before it reads again */
  private readonly purges = new Map<string, number>();
  /** snapshots being stored: a delete waits for them, so none writes old data back */
  private readonly snapshots = new Set<Promise<unknown>>();

  constructor(readonly opts: SealedRegistryOptions) {
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

  async join(name: string, conn: SealedPeer): Promise<SealedRoom> {
    for (;;) {
      const room = this.rooms.get(name) ?? (await this.loadOnce(name));
      if (room.unloaded) continue;
      if (room.conns.size >= this.opts.maxPeersPerRoom) {
        if (room.conns.size === 0) this.scheduleUnload(room);
        throw new SealedRoomFullError(name);
      }
      if (room.idleTimer) clearTimeout(room.idleTimer);
      room.idleTimer = null;
      room.join(conn);
      return room;
    }
  }

  leave(room: SealedRoom, conn: SealedPeer): void {
    room.leave(conn);
    this.opts.fanout.peerLeft(room.name, conn.peer);
    if (room.conns.size === 0 && !room.unloaded) this.scheduleUnload(room);
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
   * deletes what is stored. Loads of the room wait meanwhile. Resolves with the sockets closed.
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
    const room = this.rooms.get(name);
    const conns = room && !room.unloaded ? [...room.conns.values()] : [];
    if (room) this.unload(room);
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
    // Acks and entries of that last commit are written at the end of the turn (turn-output.ts):
    // let that happen before the sockets phase closes them with 1012.
    await new Promise((resolve) => setImmediate(resolve));
  }

  close(): void {
    this.queue.close();
    for (const room of [...this.rooms.values()]) this.unload(room);
  }

  private committed(name: string, firstSeq: number, items: readonly PendingEnvelope[]): void {
    const envelopes = items.map((i) => i.envelope);
    this.opts.changes?.changed(name, items.length);
    this.opts.fanout.entries(name, firstSeq, envelopes);
    const room = this.rooms.get(name);
    if (!room || room.unloaded) return;
    room.pendingBytes = Math.max(0, room.pendingBytes - envelopes.reduce((n, e) => n + e.length, 0));
    items.forEach((item, i) => item.ack && room.expectAck(firstSeq + i, item.ack));
    room.deliver(envelopes.map((envelope, i) => ({ seq: firstSeq + i, envelope })));
  }

  private loadOnce(name: string): Promise<SealedRoom> {
    let pending = this.loading.get(name);
    if (!pending) {
      pending = this.load(name).finally(() => this.loading.delete(name));
      this.loading.set(name, pending);
    }
    return pending;
  }

  private async load(name: string): Promise<SealedRoom> {
    const { fanout, store } = this.opts;
    try {
      await fanout.beforeLoad(name);
      let stats;
      for (;;) {
        await this.purging.get(name)?.catch(() => undefined);
        const epoch = this.purges.get(name) ?? 0;
        stats = await store.stats(name);
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
      this.rooms.set(name, room);
      this.opts.metrics.sealedRooms.inc();
      fanout.afterLoad(room);
      return room;
    } catch (err) {
      fanout.unloaded(name);
      throw err;
    }
  }

  private scheduleUnload(room: SealedRoom): void {
    if (room.idleTimer) clearTimeout(room.idleTimer);
    room.idleTimer = setTimeout(() => {
      room.idleTimer = null;
      if (room.conns.size === 0) this.unload(room);
    }, this.opts.idleMs);
    room.idleTimer.unref();
  }

  private unload(room: SealedRoom): void {
    if (room.unloaded) return;
    room.unloaded = true;
    if (room.idleTimer) clearTimeout(room.idleTimer);
    room.idleTimer = null;
    if (this.rooms.get(room.name) === room) this.rooms.delete(room.name);
    this.opts.metrics.sealedRooms.dec();
    this.opts.fanout.unloaded(room.name);
  }
}

/**
 * The sealed rooms held in memory. A room loads on its first connection (its head and stored
 * entry count from storage; all connections of that moment wait for the same load) and unloads
 * once its last connection has been gone for ROOM_IDLE_MS. Commits go through one group-commit
 * queue; once committed, entries reach the room (acks, fan-out) and the other instances.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { SealedCommitQueue, type PendingEnvelope } from './commit-queue.js';
import type { SealedFanout } from './fanout.js';
import { SealedRoom, type SealedPeer } from './room.js';
import type { SealedStore } from './store/types.js';

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
    this.opts.fanout.entries(name, firstSeq, envelopes);
    const room = this.rooms.get(name);
    if (!room || room.unloaded) return;
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
      const stats = await store.stats(name);
      const room = new SealedRoom(name, stats.head, stats.entries, {
        readAfter: (r, head) => store.read(r, head, GAP_FILL_PAGE),
        snapshotAfter: this.opts.snapshotAfter,
        onGapFillFailed: (r, err) => {
          this.opts.metrics.storageErrors.inc({ op: 'sealed_read' });
          this.opts.log.warn({ err, room: r }, 'sealed gap fill failed');
        },
      });
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

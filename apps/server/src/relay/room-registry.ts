/**
 * The rooms held in memory. A room loads on its first connection (all connections of that
 * moment wait for the same load), and unloads once its last connection has been gone for
 * ROOM_IDLE_MS and its updates are committed; its log is then compacted into a snapshot.
 */
import { EventEmitter } from 'node:events';
import * as Y from 'yjs';
import type { FastifyBaseLogger } from 'fastify';
import { Errors, closeWith } from '@sync-suite/shared';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { foldRoomLog, type LiveState } from './compaction.js';
import type { RelayPeer, RoomFanout } from './fanout.js';
import { FlushQueue } from './persistence/flush-queue.js';
import { loadStoredRoom, type Quarantined, type StoredEntryFailed } from './persistence/merge.js';
import { prepareColdState } from './persistence/stored-bytes.js';
import type { DocStore } from './persistence/types.js';
import type { RoomChanges } from '../webhooks/room-changes.js';
import { RemoteIntake } from './remote-intake.js';
import { Room } from './room.js';
import type { UpdateRefused } from './update-check.js';
import { DEFAULT_PRESENCE_LIMITS, DEFAULT_UPDATE_LIMITS, type UpdateLimits } from './update-limits.js';
import type { PresenceLimits } from './presence.js';

export interface RegistryOptions {
  store: DocStore;
  fanout: RoomFanout;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  flushMs: number;
  idleMs: number;
  compactAfter: number;
  maxPeersPerRoom: number;
  /** told after each commit (webhooks); one call, never awaited */
  changes?: RoomChanges;
  /** what one update may cost (default: the configuration's defaults) */
  limits?: UpdateLimits;
  /** what presence may cost (default: the configuration's defaults) */
  presence?: PresenceLimits;
}

/** A room that keeps failing is reported at most once per this period. */
const REPORT_EVERY_MS = 60_000;

/**
 * A cold room's document is built this long after it was read at the latest: building blocks the
 * event loop, and the stored state it answered with should be on the wire first.
 */
const WARM_AFTER_MS = 100;

export class RoomFullError extends Error {
  constructor(room: string) {
    super(`room ${room} is full`);
    this.name = 'RoomFullError';
  }
}

/** Events: 'loaded' (room), 'unloaded' (room), 'compacted' (room, entries folded, from the live document). */
export class RoomRegistry extends EventEmitter {
  readonly rooms = new Map<string, Room>();
  private readonly loading = new Map<string, Promise<Room>>();
  private readonly background = new Set<Promise<unknown>>();
  readonly persist: FlushQueue;
  readonly store: DocStore;
  private closed = false;
  private compactions: Promise<unknown> = Promise.resolve();
  /** rooms being deleted: loads wait for the purge */
  private readonly purging = new Map<string, Promise<number>>();
  /** bumped by each delete: a compaction scheduled before it must not write the room back */
  private readonly purges = new Map<string, number>();
  /** rooms whose trouble (failed load, quarantined entries) was reported, and when */
  private readonly reported = new Map<string, number>();
  private readonly limits: UpdateLimits;
  /** what other instances tell about the rooms held here */
  private readonly remote: RemoteIntake;
  /** rooms whose stored state threw while a cold load built the document: they load through a Y.Doc first */
  private readonly coldUnsafe = new Set<string>();

  constructor(private readonly opts: RegistryOptions) {
    super();
    this.remote = new RemoteIntake({ ...opts, rooms: this.rooms, reload: (room) => this.reload(room) });
    this.store = opts.store;
    this.limits = opts.limits ?? DEFAULT_UPDATE_LIMITS;
    this.persist = new FlushQueue(opts.store, {
      flushMs: opts.flushMs,
      metrics: opts.metrics,
      log: opts.log,
      onCommitted: (room, updates) => this.committed(room, updates),
    });
  }

  /** Loads the room if needed and joins the peer (which then receives sync step 1). */
  async join(name: string, peer: RelayPeer): Promise<Room> {
    for (;;) {
      const room = this.rooms.get(name) ?? (await this.loadOnce(name));
      if (room.unloaded) continue; // unloaded while we waited: load it again
      if (room.conns.size >= this.opts.maxPeersPerRoom) {
        if (room.conns.size === 0) this.scheduleUnload(room);
        throw new RoomFullError(name);
      }
      if (room.idleTimer) clearTimeout(room.idleTimer);
      room.idleTimer = null;
      room.join(peer);
      return room;
    }
  }

  leave(room: Room, peer: RelayPeer): void {
    if (room.unloaded) return;
    room.leave(peer);
    if (room.conns.size === 0) this.scheduleUnload(room);
  }

  /** Drops a room whose document can no longer be trusted; it reloads from storage. */
  evict(room: Room): void {
    if (room.unloaded) return;
    this.rooms.delete(room.name);
    room.destroy();
    this.remote.unsubscribe(room.name);
    this.opts.metrics.relayRooms.dec();
    this.emit('unloaded', room.name);
  }

  /**
   * Evicts the room and closes its connections with 1012: they reconnect and resync from a
   * fresh load (an update that failed to apply left the document suspect).
   */
  reload(room: Room): void {
    this.evict(room);
    for (const peer of room.conns.keys()) peer.close(...closeWith('ERR_ROOM_RELOADING'));
  }

  /**
   * Admin delete on this instance: closes the room's connections with 4410 and forgets it, drops
   * its uncommitted updates, waits for the commit and compactions in flight (they could write it
   * back), then runs `purgeStorage`. Loads of the room wait meanwhile. Resolves with sockets closed.
   */
  purge(name: string, purgeStorage: (room: string) => Promise<void>): Promise<number> {
    const run = this.purgeNow(name, purgeStorage);
    this.purging.set(name, run);
    void run.finally(() => {
      if (this.purging.get(name) === run) this.purging.delete(name);
    }).catch(() => undefined);
    return run;
  }

  private async purgeNow(name: string, purgeStorage: (room: string) => Promise<void>): Promise<number> {
    await this.purging.get(name)?.catch(() => undefined);
    this.purges.set(name, (this.purges.get(name) ?? 0) + 1);
    // A load in flight sees the new epoch when its read returns, and reads again after us.
    const closed = this.drop(this.rooms.get(name));
    this.persist.discard(name);
    await this.persist.idle();
    this.persist.discard(name); // a failed commit put them back
    await this.compactions.catch(() => undefined);
    await purgeStorage(name);
    return closed;
  }

  private drop(room: Room | undefined): number {
    if (!room || room.unloaded) return 0;
    const peers = [...room.conns.keys()];
    this.evict(room);
    const { closeCode, message } = Errors.ERR_ROOM_DELETED;
    for (const peer of peers) peer.close(closeCode, message);
    return peers.length;
  }

  /** Shutdown, phase drain: commit everything accepted so far. */
  async drain(): Promise<void> {
    await this.persist.flush();
  }

  /** Shutdown, phase release: commit what came after drain, stop timers, free rooms. */
  async close(): Promise<void> {
    this.closed = true;
    this.persist.close();
    try {
      await this.persist.flush();
    } finally {
      await Promise.allSettled([...this.background]);
      for (const room of this.rooms.values()) room.destroy();
      this.opts.metrics.relayRooms.dec(this.rooms.size);
      this.rooms.clear();
    }
  }

  private loadOnce(name: string): Promise<Room> {
    let pending = this.loading.get(name);
    if (!pending) {
      pending = this.load(name).finally(() => this.loading.delete(name));
      this.loading.set(name, pending);
    }
    return pending;
  }

  /** Loads after any delete of the room; a load that overlapped a delete is thrown away and done again. */
  private async load(name: string): Promise<Room> {
    for (;;) {
      while (this.purging.has(name)) await this.purging.get(name)?.catch(() => undefined);
      const epoch = this.purges.get(name);
      const room = await this.loadFromStorage(name);
      if (this.purges.get(name) === epoch) return room;
      this.evict(room);
    }
  }

  private async loadFromStorage(name: string): Promise<Room> {
    // An evicted room may still have updates waiting: storage must hold them before we read it.
    if (this.persist.hasPending(name)) await this.persist.flush();
    await this.remote.subscribe(name);
    let stored: Awaited<ReturnType<DocStore['load']>>;
    try {
      stored = await this.opts.store.load(name);
    } catch (err) {
      this.remote.unsubscribe(name);
      throw err;
    }
    let loaded: { value: Room; quarantined: Quarantined[] };
    try {
      // Served from the stored bytes until the document is built (relay/room.ts); the Y.Doc path
      // when they cannot be (nothing stored, entries nested too deep together, or known to throw).
      const cold = this.coldUnsafe.has(name) ? null : prepareColdState(stored, this.limits);
      if (cold) {
        const room = this.createRoom(name);
        room.startCold(cold, WARM_AFTER_MS);
        loaded = { value: room, quarantined: cold.quarantined };
      } else {
        loaded = loadStoredRoom(stored, this.limits, () => this.createRoom(name), (r) => r.doc, (r) => r.destroy());
      }
    } catch (err) {
      this.remote.unsubscribe(name);
      this.opts.metrics.storageErrors.inc({ op: 'load' });
      throw err;
    }
    const room = loaded.value;
    if (loaded.quarantined.length > 0) this.quarantined(name, loaded.quarantined, 'load');
    room.logLength = stored.updates.length;
    room.snapshotSeq = stored.snapshotSeq;
    room.storedBytes = stored.updates.reduce((n, u) => n + u.length, stored.snapshot?.length ?? 0);
    this.rooms.set(name, room);
    this.remote.loaded(name);
    this.opts.metrics.relayRooms.inc();
    this.emit('loaded', name);
    return room;
  }

  private createRoom(name: string): Room {
    return new Room(name, {
      fanout: this.opts.fanout,
      limits: this.limits,
      presence: this.opts.presence ?? DEFAULT_PRESENCE_LIMITS,
      onAccepted: (r, update) => this.accepted(r, update),
      onRemoteRefused: (r, refusal) => this.remoteRefused(r, refusal),
      onWarmed: (r, quarantined) => this.quarantined(r.name, quarantined, 'load'),
      onWarmFailed: (r, failure) => this.warmFailed(r, failure),
    });
  }

  /** A cold room's stored state threw while its document was built: its peers reconnect to a Y.Doc load. */
  private warmFailed(room: Room, failure: StoredEntryFailed): void {
    if (this.coldUnsafe.size >= 10_000) this.coldUnsafe.clear(); // bounded: at worst one more cold try
    this.coldUnsafe.add(room.name);
    this.opts.metrics.storageErrors.inc({ op: 'load' });
    if (this.shouldReport(`w:${room.name}`)) this.opts.log.warn({ room: room.name, index: failure.index, detail: String(failure.failure) }, 'stored relay update failed to apply after a cold load; reloading the room');
    this.reload(room);
  }

  /**
   * Whether to report trouble with this room now: once per REPORT_EVERY_MS, so a room that keeps
   * failing (and stock clients that keep retrying it) never floods the log.
   */
  shouldReport(name: string): boolean {
    const now = Date.now();
    const last = this.reported.get(name);
    if (last !== undefined && now - last < REPORT_EVERY_MS) return false;
    if (this.reported.size >= 10_000) this.reported.clear(); // bounded: at worst a few repeats
    this.reported.set(name, now);
    return true;
  }

  private quarantined(name: string, entries: readonly Quarantined[], source: 'load' | 'compact'): void {
    this.opts.metrics.quarantinedUpdates.inc({ source }, entries.length);
    if (!this.shouldReport(`q:${name}`)) return;
    const list = entries.map((q) => ({ index: q.index, bytes: q.update.length, reason: q.reason }));
    this.opts.log.warn({ room: name, entries: list.slice(0, 20), count: list.length }, 'stored relay updates set aside (quarantined); the rest of the room loaded');
  }

  private remoteRefused(room: Room, refusal: UpdateRefused): void {
    this.opts.metrics.quarantinedUpdates.inc({ source: 'remote' });
    if (this.shouldReport(`r:${room.name}`)) this.opts.log.warn({ room: room.name, limit: refusal.limit, detail: refusal.message }, 'relay update from another instance refused');
  }

  private accepted(room: Room, update: Uint8Array): void {
    this.opts.metrics.relayUpdates.inc();
    this.opts.metrics.relayUpdateBytes.inc(update.length);
    room.storedBytes += update.length;
    this.persist.enqueue(room.name, update);
  }

  private scheduleUnload(room: Room): void {
    if (this.closed || room.unloaded) return;
    if (room.idleTimer) clearTimeout(room.idleTimer);
    room.idleTimer = setTimeout(() => {
      room.idleTimer = null;
      this.track(this.unload(room));
    }, this.opts.idleMs);
  }

  private async unload(room: Room): Promise<void> {
    // Commit first, with the room still reachable: a peer joining meanwhile simply keeps it.
    while (this.persist.hasPending(room.name)) {
      try {
        await this.persist.flush();
      } catch {
        return this.scheduleUnload(room); // storage failing: keep the room, try again later
      }
    }
    if (room.conns.size > 0 || room.unloaded || this.closed) return;
    const last = room.liveState(); // the document is freed on evict
    this.evict(room);
    await this.compact(room.name, () => last);
  }

  private committed(name: string, updates: readonly Uint8Array[]): void {
    // Told to the other instances even when the room has unloaded meanwhile.
    this.opts.fanout.committed(name, updates);
    this.opts.changes?.changed(name, updates.length);
    const room = this.rooms.get(name);
    if (!room) return;
    room.logLength += updates.length;
    if (room.logLength >= this.opts.compactAfter && !room.compacting) {
      room.compacting = true;
      this.track(
        this.compact(name, () => room.liveState()).then((done) => {
          room.logLength = Math.max(0, room.logLength - done.folded);
          if (done.folded > 0) room.snapshotSeq = done.throughSeq;
          // The log was folded into a snapshot: the live state is what storage holds now (at most).
          if (done.folded > 0 && !room.unloaded && !room.isCold) room.storedBytes = Math.min(room.storedBytes, Y.encodeStateAsUpdate(room.doc).length);
          room.compacting = false;
        }),
      );
    }
  }

  /**
   * Compactions run one at a time with a turn between them: storage calls may be synchronous
   * (SQLite), and rooms that cross the threshold in one commit would otherwise block the event
   * loop for all of them at once.
   */
  private compact(name: string, live?: () => LiveState | null): Promise<{ folded: number; throughSeq: number }> {
    const epoch = this.purges.get(name);
    const run = this.compactions
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => (this.purges.get(name) === epoch ? this.compactNow(name, live) : { folded: 0, throughSeq: 0 }));
    this.compactions = run;
    return run;
  }

  private async compactNow(name: string, live?: () => LiveState | null): Promise<{ folded: number; throughSeq: number }> {
    try {
      const done = await foldRoomLog(this.opts.store, name, live, this.limits);
      if (done.quarantined.length > 0) this.quarantined(name, done.quarantined, 'compact');
      this.emit('compacted', name, done.folded, done.fromLive);
      return done;
    } catch (err) {
      this.opts.metrics.storageErrors.inc({ op: 'compact' });
      this.opts.log.error({ err, room: name }, 'relay compaction failed; the log stays as it is');
      return { folded: 0, throughSeq: 0 };
    }
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.opts.log.error({ err }, 'relay background task failed'));
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }
}

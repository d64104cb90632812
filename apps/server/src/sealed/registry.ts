/**
 * The sealed rooms held in memory, each with its lifecycle state (rooms/lifecycle.ts). A room
 * loads on its first connection (its head and stored entry count from storage; all connections
 * of that moment wait for the same load) and unloads once its last connection has been gone for
 * ROOM_IDLE_MS (nothing to commit first: commits go on without the room, see `committed`).
 * Commits go through one group-commit queue; once committed, entries reach the room (acks,
 * fan-out) and the other instances. Every state change goes through the table (rooms/room-table.ts).
 */
import type { FastifyBaseLogger } from 'fastify';
import { Errors, type ErrorCode } from '@sync-suite/shared';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { SealedCommitQueue, type PendingEnvelope } from './commit-queue.js';
import { isHeld, type Held, type RoomState } from '../rooms/lifecycle.js';
import { RoomTable } from '../rooms/room-table.js';
import { PurgeEpochs } from '../rooms/purge-epochs.js';
import type { SealedFanout } from './fanout.js';
import { SealedRemote } from './remote-intake.js';
import { SealedRoom, type SealedPeer } from './room.js';
import { SEALED_FENCED, SEALED_ROW_OVERHEAD_BYTES, type SealedGeneration, type SealedStore } from './store/types.js';
import type { RoomChanges } from '../webhooks/room-changes.js';
import { SizeReads } from '../rooms/size-reads.js';

/** Entries a gap fill reads from storage at once (after a Redis outage the gap may be long). */
const GAP_FILL_PAGE = 256;
/** ... and no more of them than fit in this many bytes (at least one): 256 entries near the frame limit were gigabytes. */
const GAP_FILL_BYTES = 16 * 1024 * 1024;

/**
 * After a Redis outage, reads of a room's generation (resync) tried before the room is dropped
 * unchecked, and the wait before the first retry, doubled each time (200 ms .. 1.6 s, ~3 s in all).
 */
const RESYNC_TRIES = 5;
const RESYNC_RETRY_MS = 200;

export interface SealedRegistryOptions {
  store: SealedStore;
  fanout: SealedFanout;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  flushMs: number;
  idleMs: number;
  snapshotAfter: number;
  /** SEALED_REFUTATION_INTERVAL_MS (default: room.ts SNAPSHOT_REQUEST_MS) */
  refutationIntervalMs?: number;
  maxPeersPerRoom: number;
  /** told of every commit (webhooks); never waits */
  changes?: RoomChanges;
  /** ROOM_MAX_BYTES: how many bytes of entries a room counts before its size is read from storage again (absent: only after a snapshot stored here) */
  roomMaxBytes?: number;
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
  /** loads being dropped after a refused write (fenced), each with its drop: one drop per load */
  private readonly fencing = new Map<SealedRoom, Promise<void>>();
  /** rooms being deleted: loads wait for the purge */
  private readonly purging = new Map<string, Promise<number>>();
  /** each delete's mark: a load that read storage before it reads again (bounded) */
  private readonly purges = new PurgeEpochs();
  /** snapshots being stored: a delete waits for them, so none writes old data back */
  private readonly snapshots = new Set<Promise<unknown>>();
  /** the rooms' stored sizes read again from storage (refreshStoredBytes, rooms/size-reads.ts) */
  private readonly sizeReads = new SizeReads<SealedRoom>();
  /** what this instance tells the others, and what they tell */
  private readonly remote: SealedRemote;
  /** rooms whose generation is being read again after a Redis outage (one read loop each) */
  private readonly resyncing = new Set<SealedRoom>();
  /** their retries' timers, cleared at close */
  private readonly resyncTimers = new Set<NodeJS.Timeout>();

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
    this.remote = new SealedRemote({
      fanout: opts.fanout,
      rooms: this.rooms,
      log: opts.log,
      metrics: opts.metrics,
      resync: (room) => this.resync(room),
      readGeneration: (room) => opts.store.generation(room),
    });
    this.queue = new SealedCommitQueue(opts.store, {
      flushMs: opts.flushMs,
      metrics: opts.metrics,
      log: opts.log,
      onCommitted: (room, firstSeq, items) => this.committed(room, firstSeq, items),
      onFenced: (room, items) => this.fenced(room, items[0]?.generation, items),
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
   * The room's generation (store.generation: made with the room's row if it has none), read once
   * per load and shared by the connections asking meanwhile. A delete unloads the room, so the
   * next load reads the new one. Null when the load is stale: its head and counters were read in
   * another generation (loadedGeneration; a delete this instance did not hear of came between the
   * two reads). Serving it would skip the new log's entries up to the deleted log's head (room.ts
   * deliver), so it is dropped here (no device was welcomed in it yet) and the callers join again.
   */
  generation(room: SealedRoom): Promise<SealedGeneration | null> {
    if (room.generation) return Promise.resolve(room.generation);
    room.generationRead ??= this.opts.store.generation(room.name).then(
      (generation) => {
        room.generationRead = null;
        if (room.loadedGeneration !== 0 && generation.current !== room.loadedGeneration) {
          this.dropStaleLoad(room, generation.current);
          return null;
        }
        if (!room.unloaded) room.generation = generation;
        return generation;
      },
      (err: unknown) => {
        room.generationRead = null;
        throw err;
      },
    );
    return room.generationRead;
  }

  /**
   * Stores a device's snapshot, in `generation` (the one the device was welcomed in); a delete of
   * the room waits for it (see purge). False when not stored; refused for its generation, the
   * room is dropped here as fenced() says. `refuted`: see SealedStore.replaceWithSnapshot.
   */
  storeSnapshot(room: string, covers: number, envelope: Uint8Array, generation?: number, refuted?: number): Promise<boolean> {
    const run = this.opts.store.replaceWithSnapshot(room, covers, envelope, generation, refuted);
    this.snapshots.add(run);
    void run.finally(() => this.snapshots.delete(run)).catch(() => undefined);
    return run.then((stored) => {
      if (stored !== SEALED_FENCED) return stored;
      this.fenced(room, generation, []);
      return false;
    });
  }

  /** A load whose head was read in a generation ended since (see generation): out of the table, so the next join loads again. */
  private dropStaleLoad(room: SealedRoom, current: number): void {
    const held = this.table.heldFor(room.name, room);
    if (!held) return;
    this.opts.log.warn({ room: room.name, loaded: room.loadedGeneration, generation: current }, 'sealed room loaded before a delete made on another instance; loading it again');
    this.table.move(held, 'evicted');
  }

  /**
   * After a snapshot: the stored size from storage (ROOM_MAX_BYTES), off the hot path: what
   * storage holds plus what was counted while it was read (maybe stored already: at most that
   * many bytes too many). A read started later voids one under way.
   */
  refreshStoredBytes(room: SealedRoom): void {
    room.countedBytes = 0;
    const before = room.storedBytes;
    this.sizeReads
      .read(
        room,
        () => this.opts.store.stats(room.name),
        (stats) => {
          if (!room.unloaded) room.storedBytes = stats.bytes + Math.max(0, room.storedBytes - before);
        },
      )
      .catch((err: unknown) => this.opts.log.warn({ err, room: room.name }, 'sealed room size could not be read'));
  }

  /**
   * Entries were counted in the room's size (SealedRoom.deliver). A snapshot stored through
   * another instance folds them without a word: an honest room written through the others would
   * look ever fuller here. Once they pass MEASURE_EVERY of ROOM_MAX_BYTES (rooms/size-reads.ts)
   * since the size was last read, it is read again (one read per room at a time).
   */
  private counted(room: SealedRoom): void {
    if (this.sizeReads.due(room, room.countedBytes, this.opts.roomMaxBytes)) this.refreshStoredBytes(room);
  }

  /**
   * Deletes the room on this instance: closes its sockets with 4410, drops its uncommitted
   * envelopes, waits for running commits and snapshots (so none writes old data back), then, on
   * the instance the delete came to (`initiator`), deletes what is stored and ends the generation.
   * Loads of the room wait meanwhile (one in flight reads again after). Resolves with the sockets
   * closed.
   *
   * The other instances (told over Redis, sealed/admin-source.ts) leave storage alone: the
   * initiator's purge ended the generation before it told them (admin/hub.ts deleteRoom), so
   * what they committed in it before that purge went with it, and what they commit after is
   * refused (fenced). A purge of theirs could only delete the new generation's entries, written
   * meanwhile through another instance (a message late behind this instance's own commits).
   * REDIS_URL requires STORAGE=postgres (packages/shared config/server-config.ts): the storage
   * the initiator purged is theirs too. For the same reason a room they loaded in the new
   * generation, the message late, is the new room and stays (heardDelete).
   */
  purge(name: string, initiator = true): Promise<number> {
    return this.purgeWith(name, initiator ? { storage: 'end', close: 'ERR_ROOM_DELETED' } : { storage: 'none', close: 'heard' });
  }

  private purgeWith(name: string, how: PurgeHow): Promise<number> {
    const run = this.purgeNow(name, how);
    this.purging.set(name, run);
    void run.finally(() => {
      if (this.purging.get(name) === run) this.purging.delete(name);
    }).catch(() => undefined);
    return run;
  }

  private async purgeNow(name: string, how: PurgeHow): Promise<number> {
    await this.purging.get(name)?.catch(() => undefined);
    const close = how.close === 'heard' ? await this.heardDelete(name) : how.close;
    if (close === null) return 0;
    // fenced(): that load is gone already (deleted, idled out); a later one, in memory now, stays
    if (how.only && this.table.get(name)?.room !== how.only) return 0;
    this.purges.bump(name);
    const held = this.table.get(name);
    const room = held?.room ?? null;
    const conns = held?.room && isHeld(held.state) ? [...held.room.conns.values()] : [];
    if (held) this.table.move(held, 'deleted'); // a loading room stays loading and reads again
    for (const conn of conns) {
      const { closeCode, message } = Errors[conn.welcomed === false && how.unwelcomed ? how.unwelcomed : close];
      conn.close(closeCode, message);
    }
    // what is dropped no longer counts for ROOM_MAX_BYTES (pendingBytes)
    releasePending(room, this.queue.discard(name));
    await this.queue.idle();
    releasePending(room, this.queue.discard(name)); // a failed commit put them back
    await Promise.all([...this.snapshots].map((s) => s.catch(() => undefined)));
    if (how.storage === 'end') await this.opts.store.purgeRoom(name);
    return conns.length;
  }

  /**
   * What a delete another instance made (told over Redis, maybe late) does to the room held here:
   * the close its devices get, or null when the room stays. Storage's generation is read: the
   * initiator ended the deleted one before telling (purge). A room whose head and counters were
   * read in that generation, and whose devices (if any yet) were welcomed in it, is the new room,
   * loaded here after the delete (the message came late): it stays, with its devices and their
   * uncommitted envelopes. Otherwise the room is dropped: its devices get 4410 when they were
   * welcomed in another generation (the deleted one, or one deleted since); 1012 when the room
   * was loaded before the delete but its devices welcomed after it, in the new generation (its
   * head counts in the deleted log; they reconnect to a new load; generation() leaves this only to
   * a room loaded before its row existed, loadedGeneration 0), or when storage does not
   * answer (their hello then tells them). A room not loaded here (none, or loading: it reads
   * again after the purge) is dropped as before, with 4410.
   */
  private async heardDelete(name: string): Promise<ErrorCode | null> {
    const held = this.table.get(name);
    const room = held?.room;
    if (!held || !room || !isHeld(held.state)) return 'ERR_ROOM_DELETED';
    let current: number;
    try {
      current = (await this.opts.store.stats(name)).generation;
    } catch (err) {
      this.opts.metrics.storageErrors.inc({ op: 'sealed_read' });
      this.opts.log.warn({ err, room: name }, 'sealed room generation could not be read at a delete made on another instance');
      return 'ERR_ROOM_RELOADING';
    }
    const welcomed = room.generation?.current;
    if (welcomed !== undefined && welcomed !== current) return 'ERR_ROOM_DELETED';
    // Evicted while storage was read: nothing of it is left to keep (loads wait for this purge).
    const same = this.table.get(name) === held && held.room === room && isHeld(held.state);
    return same && room.loadedGeneration === current ? null : 'ERR_ROOM_RELOADING';
  }

  /**
   * Storage refused a write of the room (append or snapshot) made in generation `believed`: the
   * room is in another one, so another instance deleted it and this one did not hear of it (its
   * Redis subscriber was away). Acts as if it had: the delete path (purge) without its storage
   * step (what is stored now is the new room's): the room's devices are closed, its uncommitted
   * envelopes dropped, and the room loads again, with the new generation, on its next connection.
   * The devices get 4410 when storage says a purge ended `believed` (as at a delete heard of);
   * otherwise (storage lost or restored the row, no delete) 1012, and they
   * reconnect and are served as connection.ts generationFor says. The refused `items` are dropped
   * (never acked: storage did not take them, and must not). Only the load held at the refusal,
   * and only if it believed the generation, is dropped, and only while it is still held once
   * storage has answered: a room loaded again meanwhile is in storage's generation, its devices
   * too, and stays. Nothing held at the refusal (the room was deleted here, or idled out, since
   * the write was made): nothing to drop; a later load reads storage afresh (generation()).
   */
  private fenced(name: string, believed: number | undefined, items: readonly PendingEnvelope[], cause: FenceCause = 'refused'): void {
    const held = this.table.get(name);
    const room = held?.room ?? null;
    releasePending(room, items);
    if (cause === 'refused') this.opts.metrics.storageErrors.inc({ op: 'sealed_fenced' });
    if (!room || room.generation?.current !== believed || this.fencing.has(room)) return;
    this.opts.log.warn({ room: name, generation: believed }, `${FENCE_WHY[cause]}; dropping the room here`);
    const drop = (believed === undefined ? Promise.resolve(false) : this.opts.store.generationDeleted(name, believed))
      .then(
        (deleted): ErrorCode => (deleted ? 'ERR_ROOM_DELETED' : 'ERR_ROOM_RELOADING'),
        (): ErrorCode => 'ERR_ROOM_RELOADING',
      )
      // A device still at its hello was told no generation yet: it reconnects and its hello is
      // checked against the new load (one of the new generation, dropping the room, may be on
      // its way in at the same time: 4410 would refuse it for good).
      .then((close) => this.purgeWith(name, { storage: 'none', close, unwelcomed: 'ERR_ROOM_RELOADING', only: room }))
      .then(
        () => undefined,
        (err: unknown) => this.opts.log.warn({ err, room: name }, 'sealed room could not be dropped after a refused write'),
      )
      .finally(() => this.fencing.delete(room));
    this.fencing.set(room, drop);
  }

  /**
   * A device's hello found storage in generation `stored`, not the one `room` was loaded in here
   * (connection.ts generationFor): another instance deleted the room and this one did not hear of
   * it. The room is dropped as fenced() says (its devices 4410, or 1012 when storage says no delete
   * ended their generation), so the device is served by a new load. Resolves once dropped (or
   * once a drop already under way is done); a room already loaded again stays.
   */
  async dropStale(room: SealedRoom, stored: number): Promise<void> {
    const believed = room.generation?.current;
    if (believed !== undefined && believed !== stored) this.fenced(room.name, believed, [], 'named');
    // the drop of this load, or of the one held now (loaded again meanwhile, fenced() dropping it)
    const held = this.table.get(room.name)?.room;
    await Promise.all([this.fencing.get(room), held && this.fencing.get(held)]);
    await this.purging.get(room.name)?.catch(() => undefined);
  }

  /**
   * After a Redis outage (remote-intake.ts): a delete may have gone out meanwhile. The room's
   * generation is read again before its tail: a room now in another generation is dropped as
   * fenced() says, instead of serving the new room's log to devices of the deleted one. A failed
   * read is tried again (RESYNC_TRIES, backing off); if none answers, the room is dropped here
   * unchecked (fenced(), 1012 unless storage then says the generation was deleted): its devices
   * reconnect and are served by a new load, which reads the generation at their hello, rather
   * than waiting on a tail nothing would read.
   */
  private resync(room: SealedRoom, attempt = 0): void {
    const believed = room.generation?.current;
    if (believed === undefined) return room.fillGap(); // no device welcomed yet: nothing to fence
    if (attempt === 0) {
      if (this.resyncing.has(room)) return; // a read loop is running: its fill reads from the head then
      this.resyncing.add(room);
    }
    this.opts.store.generation(room.name).then(
      (stored) => {
        this.resyncing.delete(room);
        if (room.unloaded) return;
        if (stored.current !== believed) return this.fenced(room.name, believed, [], 'moved');
        room.fillGap();
      },
      (err: unknown) => {
        this.opts.metrics.storageErrors.inc({ op: 'sealed_read' });
        const last = attempt + 1 >= RESYNC_TRIES || room.unloaded;
        this.opts.log.warn({ err, room: room.name, attempt: attempt + 1 }, 'sealed room generation could not be read after a Redis outage');
        if (last) {
          this.resyncing.delete(room);
          if (!room.unloaded) this.fenced(room.name, believed, [], 'unread');
          return;
        }
        const timer = setTimeout(() => {
          this.resyncTimers.delete(timer);
          if (room.unloaded) return void this.resyncing.delete(room);
          this.resync(room, attempt + 1);
        }, RESYNC_RETRY_MS * 2 ** attempt);
        timer.unref();
        this.resyncTimers.add(timer);
      },
    );
  }

  /**
   * A gap fill or a device's catch-up (connection.ts) read the room's log in generation `stored`,
   * not the room's (a delete made on another instance that this one missed): dropped as fenced()
   * says (its devices 4410, or 1012 when storage says no delete ended their generation), or, with
   * no device welcomed yet, taken out of the table like a stale load (generation()).
   */
  moved(room: SealedRoom, stored: number): void {
    if (room.unloaded) return;
    const believed = room.generation?.current;
    if (believed === undefined) return this.dropStaleLoad(room, stored);
    if (this.table.heldFor(room.name, room)) this.fenced(room.name, believed, [], 'moved');
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
    for (const timer of this.resyncTimers) clearTimeout(timer);
    this.resyncTimers.clear();
    this.resyncing.clear();
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
    this.remote.entries(name, firstSeq, envelopes, items[0]?.generation);
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
        readAfter: (r, head) => store.read(r, head, GAP_FILL_PAGE, GAP_FILL_BYTES),
        onGenerationMoved: (stale, stored) => this.moved(stale, stored),
        snapshotAfter: this.opts.snapshotAfter,
        onCounted: (r) => this.counted(r),
        ...(this.opts.refutationIntervalMs === undefined ? {} : { refutationIntervalMs: this.opts.refutationIntervalMs }),
        onGapFillFailed: (r, err) => {
          this.opts.metrics.storageErrors.inc({ op: 'sealed_read' });
          this.opts.log.warn({ err, room: r }, 'sealed gap fill failed');
        },
      });
      room.storedBytes = stats.bytes;
      room.snapshotCovers = stats.snapshotCovers;
      room.loadedGeneration = stats.generation;
      this.table.loaded(held, room);
    } catch (err) {
      this.remote.unsubscribe(name);
      throw err;
    }
  }
}

/**
 * What a purge does: to storage ('end': an admin delete that came here, which ends the generation;
 * 'none': another instance's delete, which ended it already, or a room dropped by fenced(), whose
 * storage holds the new room already), and the close its sockets get ('heard': another instance's
 * delete, which reads storage first, heardDelete; fenced() closes devices still at their hello 1012).
 */
interface PurgeHow {
  storage: 'end' | 'none';
  close: ErrorCode | 'heard';
  /** the close of the devices not yet welcomed (SealedPeer.welcomed), if not `close` */
  unwelcomed?: ErrorCode;
  /** fenced(): drop only this load, if still held */
  only?: SealedRoom;
}

/**
 * Why fenced() drops a room: a write refused for its generation; after a Redis outage, the room
 * found in another generation, or its generation not read at all (resync); the room found in
 * another generation at a device's hello (dropStale).
 */
type FenceCause = 'refused' | 'moved' | 'unread' | 'named';

const FENCE_WHY: Record<FenceCause, string> = {
  refused: 'sealed write refused for its generation (the room was deleted on another instance)',
  moved: 'sealed room in another generation on a re-read (the room was deleted on another instance)',
  unread: 'sealed room generation unread after a Redis outage (storage did not answer)',
  named: 'sealed room in another generation, read at a device\'s hello (the room was deleted on another instance)',
};

/** Takes back what connection.update charged to pendingBytes for `items` (committed or dropped). */
function releasePending(room: SealedRoom | null, items: readonly PendingEnvelope[]): void {
  if (!room || items.length === 0) return;
  room.pendingBytes = Math.max(0, room.pendingBytes - items.reduce((n, i) => n + i.envelope.length + SEALED_ROW_OVERHEAD_BYTES, 0));
}

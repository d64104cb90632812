/**
 * The relay rooms held in memory, each with its lifecycle state (rooms/lifecycle.ts): a room
 * loads on its first connection (all connections of that moment wait for the same load), and
 * unloads once its last connection has been gone for ROOM_IDLE_MS and its updates are committed
 * (relay/room-eviction.ts); its log is then compacted into a snapshot (relay/compaction-queue.ts).
 * Every state change goes through the table (rooms/room-table.ts): the transition table, then
 * the effects this registry gives entering each state.
 */
import { EventEmitter } from 'node:events';
import * as Y from 'yjs';
import type { FastifyBaseLogger } from 'fastify';
import { Errors, closeWith } from '@sync-suite/shared';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { isHeld, type Held, type RoomState } from '../rooms/lifecycle.js';
import { RoomTable } from '../rooms/room-table.js';
import { PurgeEpochs } from '../rooms/purge-epochs.js';
import type { LiveState } from './compaction.js';
import type { StoredEntryFailed } from './persistence/merge.js';
import { CompactionQueue, type Folded } from './compaction-queue.js';
import { compactionDue } from './compaction-due.js';
import { SizeReads } from '../rooms/size-reads.js';
import type { RelayPeer, RoomFanout } from './fanout.js';
import { FlushQueue } from './persistence/flush-queue.js';
import type { DocStore, DocStoreAdmin } from './persistence/types.js';
import type { Purged } from '../admin/room-source.js';
import type { RoomChanges } from '../webhooks/room-changes.js';
import { RemoteIntake } from './remote-intake.js';
import { RoomEviction } from './room-eviction.js';
import { readRoom, type RoomLoaderDeps } from './room-loader.js';
import { RoomReports } from './room-reports.js';
import { UpdateCounts } from './update-counts.js';
import { Room, type RoomHooks } from './room.js';
import { DEFAULT_PRESENCE_LIMITS, DEFAULT_UPDATE_LIMITS, type UpdateLimits } from './update-limits.js';
import type { PresenceLimits } from './presence.js';

/** What the registry uses of storage: the relay's store, and a room's stored size (ROOM_MAX_BYTES). */
export type RegistryStore = DocStore & Pick<DocStoreAdmin, 'statRoom'>;

export interface RegistryOptions {
  store: RegistryStore;
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
  /** ROOM_MAX_BYTES: how much of other instances' commits a room counts before its size is read from storage again (absent: never) */
  roomMaxBytes?: number;
}

export class RoomFullError extends Error {
  constructor(room: string) {
    super(`room ${room} is full`);
    this.name = 'RoomFullError';
  }
}

/**
 * Events: 'state' (room, state, event) on every transition, 'loaded' (room), 'unloaded' (room),
 * 'compacted' (room, entries folded, from the live document).
 */
export class RoomRegistry extends EventEmitter {
  /** every room held here, loading or in memory, with its lifecycle state */
  private readonly table: RoomTable<Room>;
  /** the rooms in memory (open, idle or evicting), for reading */
  readonly rooms: ReadonlyMap<string, Room>;
  private readonly background = new Set<Promise<unknown>>();
  readonly persist: FlushQueue;
  readonly store: RegistryStore;
  private closed = false;
  private readonly compactions: CompactionQueue;
  /** rooms compacting now (at most one compaction per room at a time) */
  private readonly compacting = new WeakSet<Room>();
  /** the rooms' stored sizes read again from storage (rooms/size-reads.ts; a compaction's re-estimate voids a read) */
  private readonly sizeReads = new SizeReads<Room>();
  private readonly eviction: RoomEviction;
  /** rooms being deleted: loads wait for the purge */
  private readonly purging = new Map<string, Promise<Purged>>();
  /** each delete's mark: a load or compaction that started before it must not bring the room back (bounded) */
  private readonly purges = new PurgeEpochs();
  private readonly reports: RoomReports;
  /** accepted updates and their bytes, folded into the metrics when they are read */
  private readonly updateCounts: UpdateCounts;
  private readonly loader: RoomLoaderDeps;
  private readonly limits: UpdateLimits;
  /**
   * Every room's hooks: one object and four closures for the registry, not per room (each takes
   * the room; about 350 B a room, docs/benchmarks.md, memory).
   */
  private readonly roomHooks: RoomHooks;
  /** what other instances tell about the rooms held here */
  private readonly remote: RemoteIntake;
  /** rooms whose stored state threw while a cold load built the document: they load through a Y.Doc first */
  private readonly coldUnsafe = new Set<string>();
  /** rooms being dropped after storage refused a write for their generation (fenced): one drop at a time */
  private readonly fencing = new Set<string>();

  constructor(private readonly opts: RegistryOptions) {
    super();
    this.table = new RoomTable<Room>({
      load: (held) => this.load(held),
      opened: (held) => this.opened(held.name),
      closed: (held, room) => this.closedRoom(held.name, room),
      idle: (held) => {
        if (!this.closed) this.eviction.schedule(held);
      },
      busy: (held) => this.eviction.cancel(held),
      moved: (held, event) => this.emit('state', held.name, held.state, event),
      connections: (room) => room.conns.size,
    });
    this.rooms = this.table.rooms;
    this.reports = new RoomReports(opts.metrics, opts.log);
    this.updateCounts = new UpdateCounts(opts.metrics.relayUpdates, opts.metrics.relayUpdateBytes);
    this.remote = new RemoteIntake({
      ...opts,
      rooms: this.rooms,
      reload: (room) => this.reload(room),
      moved: (room) => this.fenced(room.name, room.generation, 'moved'),
      stale: (room, generation) => this.reports.staleRemote(room.name, generation, room.generation),
    });
    this.store = opts.store;
    this.limits = opts.limits ?? DEFAULT_UPDATE_LIMITS;
    this.roomHooks = {
      fanout: opts.fanout,
      limits: this.limits,
      presence: opts.presence ?? DEFAULT_PRESENCE_LIMITS,
      onAccepted: (r, update) => this.accepted(r, update),
      onRemoteRefused: (r, refusal) => this.reports.remoteRefused(r.name, refusal),
      onWarmed: (r, quarantined) => this.reports.quarantined(r.name, quarantined, 'load'),
      onWarmFailed: (r, failure) => this.warmFailed(r, failure),
      onWholeDocumentAnswer: () => opts.metrics.wholeDocumentAnswers.inc(),
      onRemoteCounted: (r) => this.remoteCounted(r),
    };
    this.persist = new FlushQueue(opts.store, {
      flushMs: opts.flushMs,
      metrics: opts.metrics,
      log: opts.log,
      // Local output never waits for a commit: windows as long as PERSIST_FLUSH_MS allows (fewer
      // commits and fsyncs). Other instances hear of an update only once committed: short ones.
      window: opts.fanout.awaitsCommit ? 'half' : 'bound',
      onCommitted: (room, updates, generation) => this.committed(room, updates, generation),
      onFenced: (room, generation) => this.fenced(room, generation, 'refused'),
    });
    this.compactions = new CompactionQueue({
      store: opts.store,
      limits: this.limits,
      metrics: opts.metrics,
      log: opts.log,
      quarantined: (room, entries) => this.reports.quarantined(room, entries, 'compact'),
      compacted: (room, folded, fromLive) => this.emit('compacted', room, folded, fromLive),
      fenced: (room, generation) => this.fenced(room, generation, 'refused'),
    });
    this.loader = {
      store: opts.store,
      persist: this.persist,
      remote: this.remote,
      metrics: opts.metrics,
      limits: this.limits,
      reports: this.reports,
      createRoom: (name) => this.createRoom(name),
      coldUnsafe: this.coldUnsafe,
    };
    this.eviction = new RoomEviction({
      idleMs: opts.idleMs,
      persist: this.persist,
      move: (held, event) => this.table.move(held, event),
      compact: (name, last) => this.compact(name, () => last),
      track: (task) => this.track(task),
    });
  }

  /** The lifecycle state of the room (undefined: not held here). */
  stateOf(name: string): RoomState | undefined {
    return this.table.stateOf(name);
  }

  /** Loads the room if needed and joins the peer (which then receives sync step 1). */
  join(name: string, peer: RelayPeer): Promise<Room> {
    return this.table.join(name, this.opts.maxPeersPerRoom, () => new RoomFullError(name), (room) => room.join(peer));
  }

  leave(room: Room, peer: RelayPeer): void {
    const held = this.table.heldFor(room.name, room);
    if (!held) return;
    room.leave(peer);
    if (room.conns.size === 0 && held.state === 'open') this.table.move(held, 'emptied');
  }

  /** Drops a room whose document can no longer be trusted; it reloads from storage. */
  evict(room: Room): void {
    const held = this.table.heldFor(room.name, room);
    if (held) this.table.move(held, 'evicted');
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
   * back), then, on the instance the delete came to, runs `purgeStorage`. Loads of the room wait
   * meanwhile (one in flight reads again after). Resolves with sockets closed.
   *
   * The other instances, told over Redis (`purgeStorage` null: relay/admin-source.ts), leave
   * storage alone. The instance the delete came to purged it before telling them (admin/hub.ts
   * deleteRoom), and the room may have been written again through it since: a purge here, on a
   * message that came late (behind this instance's own work, or its Redis link away), would
   * delete that. REDIS_URL requires STORAGE=postgres (packages/shared config/server-config.ts):
   * the storage purged there is this instance's too. What this instance held uncommitted of the
   * room is dropped, never committed. The purge advanced the room's generation (persistence/types.ts): what this instance still
   * writes of the deleted room (a commit in flight or made meanwhile, a compaction from its copy
   * of the document) names the generation it loaded and is refused, and fenced() drops the room
   * here as this call would, also when the message never comes.
   *
   * The message tells the generation the purge moved the room to (`heard`; absent from an
   * instance of the version before: the room is dropped as above). A room loaded here in it or
   * later, the message late (a client that joined here right after its own 4410 there), is the
   * new room: it stays, its sockets open, and only updates accepted in an older generation are
   * dropped (sealed rooms alike: sealed/registry.ts heardDelete). The initiator resolves with
   * the generation its purge returned, to tell.
   */
  purge(name: string, purgeStorage: ((room: string) => Promise<number>) | null, heard?: number): Promise<Purged> {
    const run = this.purgeNow(name, purgeStorage, heard);
    this.purging.set(name, run);
    void run.finally(() => {
      if (this.purging.get(name) === run) this.purging.delete(name);
    }).catch(() => undefined);
    return run;
  }

  private async purgeNow(name: string, purgeStorage: ((room: string) => Promise<number>) | null, heard?: number): Promise<Purged> {
    await this.purging.get(name)?.catch(() => undefined);
    const keep = heard !== undefined && this.loadedSince(name, heard);
    if (!keep) this.purges.bump(name);
    const closed = keep ? 0 : this.drop(name);
    this.persist.discard(name, heard);
    await this.persist.idle();
    this.persist.discard(name, heard); // a failed commit put them back
    await this.compactions.idle();
    if (!purgeStorage) return { closed };
    return { closed, relayGeneration: await purgeStorage(name) };
  }

  /** Whether the room is in memory here, loaded in `generation` or a later one (the new room of a delete). */
  private loadedSince(name: string, generation: number): boolean {
    const held = this.table.get(name);
    return !!held?.room && isHeld(held.state) && held.room.generation >= generation;
  }

  private drop(name: string): number {
    const held = this.table.get(name);
    if (!held) return 0;
    const peers = held.room && isHeld(held.state) ? [...held.room.conns.keys()] : [];
    // A loading room stays loading: its read sees the new epoch and is done again after the delete.
    this.table.move(held, 'deleted');
    const { closeCode, message } = Errors.ERR_ROOM_DELETED;
    for (const peer of peers) peer.close(closeCode, message);
    return peers.length;
  }

  /**
   * Storage refused a write of the room (append or compaction) made in generation `believed`, or
   * a re-read (after a fan-out outage, or an update of a newer generation from another instance:
   * relay/remote-intake.ts) found it in another (`moved`): a purge moved the room on, so
   * another instance deleted it and this one did not hear of it (its Redis link away, or the
   * message still on its way). Acts as if it had (purge, leaving storage alone: what it holds is
   * the new room's): the room's sockets are closed with 4410, its uncommitted updates dropped, and
   * it loads again, in the new generation, on its next connection. The refused updates are never
   * stored. Only the load that believed the generation is dropped: a room loaded again since (a
   * late refusal) stays. Counted per refusal; one warn line per room per REPORT_EVERY_MS.
   */
  private fenced(name: string, believed: number | undefined, cause: 'refused' | 'moved'): void {
    if (cause === 'refused') this.opts.metrics.storageErrors.inc({ op: 'relay_fenced' });
    const room = this.rooms.get(name);
    if (this.fencing.has(name) || this.closed || (room && room.generation !== believed)) return;
    if (this.reports.shouldReport(`f:${name}`)) this.opts.log.warn({ room: name, generation: believed }, FENCE_WHY[cause]);
    this.fencing.add(name);
    void this.purge(name, null)
      .catch((err: unknown) => this.opts.log.warn({ err, room: name }, 'relay room could not be dropped after a refused write'))
      .finally(() => this.fencing.delete(name));
  }

  /** Shutdown, phase drain: commit everything accepted so far. */
  async drain(): Promise<void> {
    await this.persist.flush();
  }

  /** Shutdown, phase release: commit what came after drain, stop timers, fold long logs, free rooms. */
  async close(): Promise<void> {
    this.closed = true;
    this.persist.close();
    try {
      await this.persist.flush();
    } finally {
      await Promise.allSettled([...this.background]);
      await this.foldLongLogs();
      for (const held of this.table.all()) this.table.move(held, 'shutdown');
    }
  }

  /**
   * At shutdown, the open rooms whose log holds COMPACT_AFTER_UPDATES entries or more (a large
   * room's log may wait longer for its compaction: compaction-due.ts) are folded, longest logs
   * first, for at most SHUTDOWN_FOLD_MS in all: the first load after the restart then reads a
   * snapshot, not a long log (docs/benchmarks.md, cold-load). One that does not finish in time
   * leaves storage as it was (compaction writes in one transaction).
   */
  private async foldLongLogs(): Promise<void> {
    const rooms = [...this.rooms.values()].filter((r) => !r.unloaded && !r.isCold && r.logLength >= this.opts.compactAfter && !this.compacting.has(r));
    if (rooms.length === 0) return;
    rooms.sort((a, b) => b.logLength - a.logLength);
    const until = performance.now() + SHUTDOWN_FOLD_MS;
    for (const room of rooms) {
      if (performance.now() >= until) break;
      this.compacting.add(room);
      const last = room.liveState(); // captured now: the room is freed once close() returns
      await this.compact(room.name, () => last).catch(() => undefined); // failures are counted and logged there
    }
  }

  private opened(name: string): void {
    this.remote.loaded(name);
    this.opts.metrics.relayRooms.inc();
    this.emit('loaded', name);
  }

  private closedRoom(name: string, room: Room | null): void {
    if (!room) return;
    room.destroy();
    this.remote.unsubscribe(name);
    this.opts.metrics.relayRooms.dec();
    this.emit('unloaded', name);
  }

  /** Loads after any delete of the room; a load that overlapped a delete is thrown away and done again. */
  private async load(held: Held<Room>): Promise<void> {
    const { name } = held;
    for (;;) {
      while (this.purging.has(name)) await this.purging.get(name)?.catch(() => undefined);
      const mark = this.purges.mark();
      const room = await readRoom(this.loader, name);
      if (held.state === 'loading' && this.purges.unchanged(name, mark)) return this.table.loaded(held, room);
      room.destroy();
      this.remote.unsubscribe(name);
      if (held.state !== 'loading') throw new Error(`relay room ${name} was closed while it loaded`);
    }
  }

  private createRoom(name: string): Room {
    return new Room(name, this.roomHooks);
  }

  /** A cold room's stored state threw while its document was built: its peers reconnect to a Y.Doc load. */
  private warmFailed(room: Room, failure: StoredEntryFailed): void {
    if (this.coldUnsafe.size >= 10_000) this.coldUnsafe.clear(); // bounded: at worst one more cold try
    this.coldUnsafe.add(room.name);
    this.reports.warmFailed(room.name, failure);
    this.reload(room);
  }

  /** Whether to report trouble with this room now (relay/room-reports.ts). */
  shouldReport(key: string): boolean {
    return this.reports.shouldReport(key);
  }

  private accepted(room: Room, update: Uint8Array): void {
    this.updateCounts.add(update.length);
    room.storedBytes += update.length;
    room.uncommittedBytes += update.length;
    this.persist.enqueue(room.name, update, room.generation);
  }

  private committed(name: string, updates: readonly Uint8Array[], generation: number | undefined): void {
    // Told to the other instances even when the room has unloaded meanwhile, with the generation
    // they were stored in: an instance holding the room in another one does not apply them
    // (relay/remote-intake.ts), so a late word of a deleted room never reaches the new one.
    this.opts.fanout.committed(name, updates, generation);
    this.opts.changes?.changed(name, updates.length);
    const room = this.rooms.get(name);
    if (!room) return;
    const bytes = updates.reduce((n, u) => n + u.length, 0);
    room.uncommittedBytes = Math.max(0, room.uncommittedBytes - bytes);
    room.logLength += updates.length;
    room.logBytes += bytes;
    if (this.compacting.has(room) || !compactionDue({ entries: room.logLength, bytes: room.logBytes }, room.snapshotBytes, this.opts.compactAfter)) return;
    this.compacting.add(room);
    // The live state's size and the room's counts when it was captured: what storage holds after the
    // compaction is that snapshot plus what was accepted since (not the document encoded once more),
    // and the log left is what was committed since (the entries folded were read just before).
    let captured: { bytes: number; stored: number; logBytes: number } | null = null;
    const live = (withDeletions: boolean): LiveState | null => {
      const state = room.liveState(withDeletions);
      captured = state && { bytes: state.update.byteLength, stored: room.storedBytes, logBytes: room.logBytes };
      return state;
    };
    this.track(
      this.compact(name, live).then((done) => {
        const entries = room.logLength;
        room.logLength = Math.max(0, entries - done.folded);
        if (done.folded > 0) {
          room.snapshotSeq = done.throughSeq;
          room.snapshotBytes = done.snapshotBytes ?? room.snapshotBytes;
          const folded = (captured as { logBytes: number } | null)?.logBytes ?? Math.round((room.logBytes * done.folded) / Math.max(1, entries));
          room.logBytes = room.logLength === 0 ? 0 : Math.max(0, room.logBytes - folded);
        }
        // The log was folded into a snapshot: storage holds that and what came since (at most).
        if (done.folded > 0 && !room.unloaded && !room.isCold) {
          room.storedBytes = Math.min(room.storedBytes, storedAfter(room, done, captured));
          room.remoteBytes = 0;
          this.sizeReads.forget(room); // a read under way may have seen the log before the fold
        }
        this.compacting.delete(room);
      }),
    );
  }

  /**
   * Another instance's commit was counted in the room's size (Room.applyRemote). That instance
   * compacts its own commits without a word, and this one compacts only after its own: what it
   * counted may have been folded into a snapshot since, and an honest room written through the
   * others would look ever fuller here. Once such bytes pass MEASURE_EVERY of ROOM_MAX_BYTES
   * (rooms/size-reads.ts) since the size was last known, it is read from storage (one read per room
   * at a time, off the hot path): what storage holds, plus what this instance has not committed, plus what was
   * counted while it was read (maybe stored already: at most that many bytes too many).
   */
  private remoteCounted(room: Room): void {
    if (!this.sizeReads.due(room, room.remoteBytes, this.opts.roomMaxBytes)) return;
    room.remoteBytes = 0;
    const before = room.storedBytes;
    const uncommitted = room.uncommittedBytes;
    const read = this.sizeReads.read(
      room,
      () => this.store.statRoom(room.name),
      (stat) => {
        if (!room.unloaded) room.storedBytes = (stat?.bytes ?? 0) + uncommitted + Math.max(0, room.storedBytes - before);
      },
    );
    this.track(
      read.catch((err: unknown) => {
        this.opts.metrics.storageErrors.inc({ op: 'load' });
        this.opts.log.warn({ err, room: room.name }, 'relay room size could not be read');
      }),
    );
  }

  /** Queues a compaction that a delete of the room issued before it runs cancels. */
  private compact(name: string, live?: (withDeletions: boolean) => LiveState | null): Promise<Folded> {
    const mark = this.purges.mark();
    return this.compactions.run(name, () => this.purges.unchanged(name, mark), live);
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.opts.log.error({ err }, 'relay background task failed'));
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }
}

/**
 * A room's stored size once a compaction wrote its snapshot: from the live state it used, that
 * snapshot plus what the room accepted since it was captured; otherwise (merged from storage) the
 * live document encoded.
 */
function storedAfter(room: Room, done: Folded, captured: { bytes: number; stored: number } | null): number {
  if (captured && done.fromLive) return captured.bytes + Math.max(0, room.storedBytes - captured.stored);
  return Y.encodeStateAsUpdate(room.doc).length;
}

/** The longest close() spends folding long logs (foldLongLogs): within SHUTDOWN_TIMEOUT_MS's default of 10 s. */
const SHUTDOWN_FOLD_MS = 2000;

/** The warn line of fenced(), by cause. */
const FENCE_WHY = {
  refused: 'relay write refused for its generation (the room was deleted on another instance); dropping the room here (4410)',
  moved: 'relay room in another generation on a re-read (the room was deleted on another instance); dropping the room here (4410)',
} as const;

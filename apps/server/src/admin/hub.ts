/**
 * The admin operations, on this instance and (through an AdminBus, with REDIS_URL) on the others:
 * revoke a token subject or id, list and inspect stored rooms (connections summed over the
 * instances), delete a room. Room storage kinds
 * register a RoomAdminSource; the storage engine keeps the revocations.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { LiveSockets } from '../auth/live-sockets.js';
import type { Revocation, RevocationList, RevocationStore } from '../auth/revocations.js';
import type { RoomChanges } from '../webhooks/room-changes.js';
import type { HeardDelete, Purged, RoomAdminSource, RoomFigures, StoredRoomFigures } from './room-source.js';

/** What one instance asks the others to do (or, for `connections`, to tell). */
export type AdminOp =
  | { op: 'revoke'; revocation: Revocation }
  /**
   * `relayGeneration`: the relay room's generation after the sender's purge; a room the receiver
   * loaded in it (the message came late) is the new room and stays. Absent from an instance of
   * the version before: the room is dropped whatever its generation.
   */
  | { op: 'delete'; room: string; relayGeneration?: number }
  | { op: 'connections'; rooms: string[] };

/** One instance's answer: sockets it closed, and for `connections` its count per room asked, in order. */
export interface AdminAnswer {
  closed: number;
  counts?: number[];
}

/** Summed over the instances that answered. */
export interface AdminOutcome {
  closed: number;
  instances: number;
  /** per room asked (`connections`), summed */
  counts: number[];
}

/** Carries AdminOps to the other instances and sums their answers. */
export interface AdminTransport {
  broadcast(op: AdminOp): Promise<AdminOutcome>;
}

export interface AdminHubOptions {
  live: LiveSockets;
  revocations: RevocationList;
  changes: RoomChanges;
  log: FastifyBaseLogger;
}

/** How often an instance re-reads stored revocations when there are several (a missed message ends there). */
const REFRESH_MS = 5000;

export class AdminHub {
  private readonly sources: RoomAdminSource[] = [];
  private store: RevocationStore | null = null;
  private transport: AdminTransport | null = null;
  private refresh: NodeJS.Timeout | null = null;

  constructor(private readonly opts: AdminHubOptions) {}

  addSource(source: RoomAdminSource): void {
    this.sources.push(source);
  }

  /** The engine that stores revocations; what it holds is in force from now on. */
  async useRevocationStore(store: RevocationStore): Promise<void> {
    this.store = store;
    await this.reload();
  }

  useTransport(transport: AdminTransport): void {
    this.transport = transport;
    this.refresh ??= setInterval(() => {
      this.reload().catch((err: unknown) => this.opts.log.warn({ err }, 'revocations could not be re-read'));
    }, REFRESH_MS);
    this.refresh.unref();
  }

  stop(): void {
    if (this.refresh) clearInterval(this.refresh);
    this.refresh = null;
  }

  /** Stores the revocation, closes the matching sockets here and on every instance. */
  async revoke(revocation: Revocation): Promise<{ closed: number; instances: number }> {
    if (!this.store) throw new Error('no revocation store');
    await this.store.saveRevocation(revocation);
    const local = this.applyRevocation(revocation);
    const remote = await this.broadcast({ op: 'revoke', revocation });
    return { closed: local + remote.closed, instances: 1 + remote.instances };
  }

  async deleteRoom(room: string): Promise<{ closed: number; instances: number }> {
    const local = await this.purgeLocal(room);
    const { relayGeneration } = local;
    const remote = await this.broadcast(relayGeneration === undefined ? { op: 'delete', room } : { op: 'delete', room, relayGeneration });
    this.opts.changes.deleted(room);
    return { closed: local.closed + remote.closed, instances: 1 + remote.instances };
  }

  /** An op from another instance; resolves with what happened here. */
  async handle(op: AdminOp): Promise<AdminAnswer> {
    if (op.op === 'revoke') return { closed: this.applyRevocation(op.revocation) };
    if (op.op === 'connections') return { closed: 0, counts: op.rooms.map((r) => this.connections(r)) };
    const heard = op.relayGeneration === undefined ? {} : { relayGeneration: op.relayGeneration };
    return { closed: (await this.purgeLocal(op.room, heard)).closed };
  }

  async listRooms(prefix: string, after: string, limit: number): Promise<{ rooms: RoomFigures[]; next: string | null }> {
    const lists = await Promise.all(this.sources.map((s) => s.list(prefix, after, limit + 1)));
    const merged = new Map<string, StoredRoomFigures>();
    for (const list of lists) for (const r of list) merged.set(r.room, combine(merged.get(r.room), r));
    const sorted = [...merged.values()].sort((a, b) => (a.room < b.room ? -1 : a.room > b.room ? 1 : 0));
    const stored = sorted.slice(0, limit);
    const counts = await this.clusterConnections(stored.map((r) => r.room));
    const page = stored.map((r, i) => ({ ...r, connections: counts[i] ?? 0 }));
    const last = page.at(-1);
    return { rooms: page, next: sorted.length > limit && last ? last.room : null };
  }

  /** null when nothing is stored and nobody is connected on any instance that answered. */
  async room(room: string): Promise<RoomFigures | null> {
    const [stats, counts] = await Promise.all([Promise.all(this.sources.map((s) => s.stat(room))), this.clusterConnections([room])]);
    const stored = stats.reduce<StoredRoomFigures | null>((acc, s) => (s ? combine(acc ?? undefined, s) : acc), null);
    const connections = counts[0] ?? 0;
    if (!stored && connections === 0) return null;
    return { ...(stored ?? { room, sealed: false, bytes: 0, entries: 0, lastChangeAt: null }), connections };
  }

  /** Sockets on each room, here plus on every instance that answers within the bus's timeout. */
  private async clusterConnections(rooms: string[]): Promise<number[]> {
    const local = rooms.map((r) => this.connections(r));
    if (rooms.length === 0 || !this.transport) return local;
    const remote = await this.broadcast({ op: 'connections', rooms });
    return local.map((n, i) => n + (remote.counts[i] ?? 0));
  }

  private connections(room: string): number {
    return this.sources.reduce((n, s) => n + s.connections(room), 0);
  }

  private applyRevocation(r: Revocation): number {
    this.opts.revocations.apply(r);
    return this.opts.live.revoke({ sub: r.sub, jti: r.jti });
  }

  /** `heard`: the delete came from another instance (undefined: to this one, which purges storage). */
  private async purgeLocal(room: string, heard?: HeardDelete): Promise<Purged> {
    const purged = await Promise.all(this.sources.map((s) => s.purge(room, heard)));
    const relayGeneration = purged.find((p) => p.relayGeneration !== undefined)?.relayGeneration;
    const closed = purged.reduce((n, p) => n + p.closed, 0);
    return relayGeneration === undefined ? { closed } : { closed, relayGeneration };
  }

  private async broadcast(op: AdminOp): Promise<AdminOutcome> {
    if (!this.transport) return { closed: 0, instances: 0, counts: [] };
    try {
      return await this.transport.broadcast(op);
    } catch (err) {
      // Stored already: the others pick a revocation up on their next refresh; figures are this instance's.
      this.opts.log.warn({ err, op: op.op }, 'admin operation not sent to the other instances');
      return { closed: 0, instances: 0, counts: [] };
    }
  }

  private async reload(): Promise<void> {
    if (!this.store) return;
    const now = Math.floor(Date.now() / 1000);
    for (const r of await this.store.loadRevocations(now)) this.applyRevocation(r);
  }
}

/**
 * One room stored by two kinds of storage (a plain room whose type was later made sealed, or the
 * reverse): listed once, with the figures of both summed and `sealed` true if either is; a delete
 * removes both.
 */
function combine(a: StoredRoomFigures | undefined, b: StoredRoomFigures): StoredRoomFigures {
  if (!a) return b;
  const times = [a.lastChangeAt, b.lastChangeAt].filter((t): t is number => t !== null);
  return {
    room: a.room,
    sealed: a.sealed || b.sealed,
    bytes: a.bytes + b.bytes,
    entries: a.entries + b.entries,
    lastChangeAt: times.length > 0 ? Math.max(...times) : null,
  };
}

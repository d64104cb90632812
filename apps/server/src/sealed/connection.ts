/**
 * One WS /sealed socket: admission (admission.ts), then `hello`, join, catch-up from the
 * client's cursor, then decode -> dispatch. Frames are queued until the connection is ready for
 * them, so nothing a fast client sends is lost, and the socket is not read further meanwhile, so
 * the queue never holds more than what one read brought. Entries reach the client strictly in seq order:
 * those the room delivers during the catch-up are held and sent after it, without duplicates.
 * Envelopes are never opened or logged.
 */
import { randomInt } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { ConnLog, connId } from '../ws/conn-log.js';
import type { RawData, WebSocket } from 'ws';
import {
  closeReason,
  closeWith,
  encodeSealedMessage,
  readSealedClientMessage,
  writeSealedCaughtUp,
  writeSealedEntry,
  writeSealedStoredSnapshot,
  writeSealedWelcome,
  type ErrorCode,
  type SealedClientMessage,
} from '@sync-suite/shared';
import type { ServerContext } from '../context.js';
import type { LiveSocket } from '../auth/live-sockets.js';
import type { NewRoomQuota } from '../limits/new-rooms.js';
import { RateLimiter } from '../limits/rate-limiter.js';
import { ReadThrottle } from '../ws/read-throttle.js';
import { SharedListeners } from '../ws/shared-listeners.js';
import type { Keepalive } from '../ws/keepalive.js';
import type { Admission } from '../ws/admission.js';
import { rawDataToBuffer } from '../ws/raw-data.js';
import { admitToRoom } from './admission.js';
import { TurnOutput, type BudgetHolder, type TurnFlush } from '../ws/turn-output.js';
import type { UnsentBudget } from '../ws/unsent-budget.js';
import { SealedRoomFullError, type SealedRegistry } from './registry.js';
import type { SealedPeer, SealedRoom } from './room.js';
import { SEALED_GENERATION_LIMIT, SEALED_ROW_OVERHEAD_BYTES } from './store/types.js';

export interface SealedDeps {
  ctx: ServerContext;
  /** writes what each socket was sent in one event-loop turn as one write */
  turns: TurnFlush;
  registry: SealedRegistry;
  keepalive: Keepalive;
  /** the instance's admission (ctx.admission): the socket's close releases it there */
  admission: Admission;
  maxBufferedBytes: number;
  /** ROOM_MAX_BYTES, and MAX_NEW_ROOMS_PER_SUB_PER_HOUR (null with auth off) */
  quotas?: { roomMaxBytes: number; newRooms: NewRoomQuota | null };
}

type State = 'admitting' | 'hello' | 'joining' | 'open' | 'closed';

/** Entries read from storage per catch-up page: a long log is never held in memory at once. */
export const CATCH_UP_PAGE = 64;
const DRAIN_POLL_MS = 10;

export class SealedConnection implements SealedPeer, BudgetHolder {
  // One listener of each kind for every socket, as on /relay and /signal (ws/shared-listeners.ts);
  // socket errors are counted and logged by ws/upgrade-hooks.ts's listener.
  private static readonly listeners = new SharedListeners<SealedConnection>({
    message: (conn, data) => conn.onMessage(data),
    close: (conn) => conn.onClose(),
    watchers: (conn) => conn.deps,
  });

  /** this connection's id in presence and peer-left (random: unique across instances) */
  readonly peer = randomInt(1, 2 ** 47);
  writable = false;
  caughtUp = false;
  welcomed = false;
  private state: State = 'admitting';
  private roomName = '';
  /** the token's `sub` ('' with auth off) */
  sub = '';
  private room: SealedRoom | null = null;
  private queue: Uint8Array[] = [];
  /** entries delivered while catching up, sent after it */
  private held: Array<{ seq: number; frame: Uint8Array }> | null = null;
  private heldBytes = 0;
  /** unsent bytes at the catch-up's last wait for the receiver */
  private lastUnsent = 0;
  private sentSeq = 0;
  /** the room's generation at join (told in `welcome`): every write of this connection names it (store fencing) */
  private generation = 0;
  private readonly limiter: RateLimiter;
  /**
   * pauses reading while the connection is above its message rate, and holds it while a frame
   * waits in `queue` for the connection to be ready for it; made on first use (see throttle)
   */
  private throttleState: ReadThrottle | null = null;
  /** this connection's entry in the live sockets (token expiry and revocation) */
  private liveEntry: LiveSocket | null = null;
  private readonly output: TurnOutput;
  /** made on the first line written at an enabled level (idle connections write none), with `conn` and `room` */
  private logState: ConnLog | null = null;
  private idState: string | null = null;

  constructor(
    private readonly ws: WebSocket,
    private readonly deps: SealedDeps,
    /** the sealed endpoint's logger */
    private readonly parentLog: FastifyBaseLogger,
  ) {
    const { config } = deps.ctx;
    this.limiter = new RateLimiter(config.MAX_MESSAGES_PER_SECOND, { factor: config.RATE_LIMIT_ABUSE_FACTOR, seconds: config.RATE_LIMIT_ABUSE_SECONDS });
    this.output = new TurnOutput(ws, deps.turns, this);
    deps.ctx.metrics.sealedConnections.inc();
    SealedConnection.listeners.attach(ws, this); // and deps.keepalive watches it
  }

  /** The connection's id in log lines, made when first asked for. */
  get id(): string {
    return (this.idState ??= connId());
  }

  private get log(): ConnLog {
    return (this.logState ??= new ConnLog(this.parentLog, this.roomName === '' ? { conn: this.id } : { conn: this.id, room: this.roomName }));
  }

  /** Made when the connection first exceeds its rate or sends before it is ready: most never do, and it holds two closures and a listener. */
  private get throttle(): ReadThrottle {
    return (this.throttleState ??= new ReadThrottle(this.ws, () => this.limiter.waitMs(), () => this.deps.keepalive.touch(this.ws)));
  }

  /** `onAdmitted`: the token of `sub` was verified; the instance's admission may still refuse it (MAX_CONNECTIONS_PER_SUB). */
  async open(roomName: string, token: string | undefined, onAdmitted?: (sub: string) => ErrorCode | null): Promise<void> {
    const admission = await admitToRoom(this.deps.ctx, roomName, token, 'sealed');
    if (this.state === 'closed') return;
    if (!admission.ok) {
      if (!admission.auth) this.count(admission.metricReason);
      return this.close(admission.code, admission.reason);
    }
    const refused = onAdmitted?.(admission.claims.sub);
    if (refused) return this.reject(...closeWith(refused), 'too_many_connections_per_sub');
    // Token expiry and revocation close the socket (auth/live-sockets.ts), as on /relay and /signal.
    const { claims } = admission;
    this.liveEntry = { sub: claims.sub, jti: claims.jti, exp: claims.exp, endpoint: 'sealed', closeForToken: (code) => this.close(...closeWith(code)) };
    this.roomName = roomName;
    this.sub = claims.sub;
    this.writable = !admission.readOnly;
    this.logState?.bind('room', roomName);
    this.deps.ctx.live.add(this.liveEntry);
    // Revoked while its token was being verified: live.add has just closed it (4401). Nothing it
    // sent meanwhile may be served.
    if (this.isClosed()) return;
    this.state = 'hello';
    this.drainQueue();
  }

  deliver(seq: number, frame: Uint8Array): void {
    if (this.held) {
      // A receiver too slow to finish its catch-up must not make the server hold the live traffic for it.
      this.heldBytes += frame.length;
      if (this.heldBytes > this.deps.maxBufferedBytes) return this.slowConsumer('connection');
      return void this.held.push({ seq, frame });
    }
    if (seq <= this.sentSeq) return;
    this.sentSeq = seq;
    this.write(frame);
  }

  /**
   * The room's messages outside the entry order (presence, peer-left, ack, snapshot request).
   * None before the connection is caught up: it joins the room before its admission's last check
   * and `welcome`, and the presence it gets after `caught-up` is every peer's latest (a change or
   * a peer-left meanwhile is in it), so nothing reaches a device before its `welcome`, nor one
   * refused after joining.
   */
  send(frame: Uint8Array): void {
    if (this.caughtUp) this.write(frame);
  }

  /** Sends one frame; a receiver holding too much unsent data is dropped. */
  private write(frame: Uint8Array, bounded = true): void {
    const ws = this.ws;
    if (ws.readyState !== ws.OPEN) return;
    if (bounded && ws.bufferedAmount + this.output.queuedBytes > this.deps.maxBufferedBytes) return this.slowConsumer('connection');
    this.output.push(frame);
    // The instance's budget of unsent bytes, across every connection (ws/unsent-budget.ts); the
    // catch-up's unbounded writes too.
    this.deps.ctx.unsent.charge(this, this.output.unsentBytes);
  }

  /** BudgetHolder: the instance's budget, told of the large frames its TurnOutput holds by reference. */
  get unsentBudget(): UnsentBudget {
    return this.deps.ctx.unsent;
  }

  /** UnsentHolder: what this socket holds unsent. */
  get unsentBytes(): number {
    return this.output.unsentBytes;
  }

  /** UnsentHolder: the instance is over MAX_UNSENT_BYTES_TOTAL and this receiver holds the most. */
  shedUnsent(): void {
    if (this.state !== 'closed') return this.slowConsumer('instance');
    // Closing: its close frame waits behind what it does not read.
    this.ws.terminate();
  }

  reject(code: number, reason: string, metricReason: string): void {
    this.count(metricReason);
    this.close(code, reason);
  }

  close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.log.debug({ code, reason }, 'closing sealed connection');
    this.output.flushTurn(); // what was sent before the close goes before the close frame
    this.ws.close(code, closeReason(reason));
    // The close handshake reads the device's close frame (what else it sent is ignored).
    this.throttleState?.release();
  }

  /** after an await: the socket may have closed meanwhile */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private count(reason: string): void {
    this.deps.ctx.metrics.rejectedMessages.inc({ endpoint: 'sealed', reason });
  }

  /** `over`: its own allowance ('connection') or the instance's MAX_UNSENT_BYTES_TOTAL ('instance'). */
  private slowConsumer(over: 'connection' | 'instance'): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.count('slow_consumer');
    this.output.dropTurn();
    this.log.info({ buffered: this.ws.bufferedAmount, over }, 'slow sealed receiver dropped');
    this.ws.terminate();
  }

  private onMessage(data: RawData): void {
    if (this.state === 'closed') return;
    const frame = rawDataToBuffer(data);
    const { config } = this.deps.ctx;
    if (frame.length > config.RELAY_MAX_MESSAGE_BYTES) return this.reject(...closeWith('ERR_MESSAGE_TOO_BIG'), 'too_big');
    const pace = this.limiter.take();
    if (pace === 'abuse') return this.reject(...closeWith('ERR_RATE_LIMITED'), 'rate_limited');
    if (pace === 'slow' && this.throttle.pause()) this.deps.ctx.metrics.rateLimitPauses.inc({ endpoint: 'sealed' });
    this.queue.push(frame);
    if (this.state === 'hello' || this.state === 'open') return this.drainQueue();
    // Not ready for it (admission, join, catch-up): held, and the socket is not read further until
    // the connection is ready, so what the device sends meanwhile stays in its own buffers (TCP
    // flow control), not in server memory. The rate limiter's wait does not resume a held socket.
    this.throttle.hold();
  }

  private drainQueue(): void {
    while (this.queue.length > 0 && (this.state === 'hello' || this.state === 'open')) this.handle(this.queue.shift() as Uint8Array);
    // Reading goes on once nothing waits, unless the rate limiter's wait still holds it.
    if (this.queue.length === 0 && !this.isClosed()) this.throttleState?.release();
  }

  private handle(frame: Uint8Array): void {
    const decoded = readSealedClientMessage(frame);
    if (!decoded.ok) {
      this.log.debug({ detail: decoded.error.error }, 'malformed sealed message');
      return this.reject(...closeWith('ERR_PROTOCOL'), 'malformed');
    }
    const message = decoded.message;
    if (this.state === 'hello') {
      if (message.type !== 'hello') return this.reject(...closeWith('ERR_PROTOCOL'), 'malformed');
      this.state = 'joining';
      this.join(message.cursor, message.generation).catch((err: unknown) => this.failed(err));
      return;
    }
    this.dispatch(message, this.room as SealedRoom);
  }

  private dispatch(message: SealedClientMessage, room: SealedRoom): void {
    switch (message.type) {
      case 'hello':
        return this.reject(...closeWith('ERR_PROTOCOL'), 'malformed');
      case 'update':
        return this.update(room, message.id, message.envelope);
      case 'snapshot':
        return this.snapshot(room, message.covers, message.envelope);
      case 'presence':
        return this.presence(room, message.envelope);
      case 'snapshot-bad':
        return this.snapshotBad(room, message.covers);
    }
  }

  /**
   * `known`: the generation the device's cursor counts in (0: unknown; undefined: a client before
   * generations, served as before and sent the welcome it can read).
   */
  private async join(cursor: number, known: number | undefined): Promise<void> {
    const { registry } = this.deps;
    let room: SealedRoom;
    let checked: { generation: number; fromStart: boolean };
    // A second pass only after the room held here was found stale and dropped (generationFor).
    for (let mayReload = true; ; mayReload = false) {
      this.held = [];
      this.heldBytes = 0;
      try {
        room = await registry.join(this.roomName, this);
      } catch (err) {
        if (err instanceof SealedRoomFullError) return this.reject(...closeWith('ERR_ROOM_FULL'), 'room_full');
        this.log.error({ err }, 'sealed room could not be loaded');
        return this.reject(...closeWith('ERR_ROOM_UNAVAILABLE'), 'load_failed');
      }
      this.room = room;
      if (this.isClosed()) return registry.leave(room, this);
      if (!(await this.mayOpen(room)) || this.isClosed()) return;
      // Read for every device (one that names none too): its writes name it, so storage refuses them
      // once the room is deleted elsewhere, even if this instance never hears of it (registry.fenced).
      const found = await this.generationFor(room, known ?? 0, mayReload);
      if (!found || this.isClosed()) return;
      if (!('stale' in found)) {
        checked = found;
        break;
      }
      // Left before the drop, so the drop does not close this socket with the room's devices.
      registry.leave(room, this);
      this.room = null;
      if (found.stale === 'load') continue; // registry.generation dropped that load already
      await registry.dropStale(room, found.stale);
      if (this.isClosed()) return;
    }
    this.generation = checked.generation;
    const generation = known === undefined ? undefined : checked.generation;
    // The frame limit too, to a client that can read it (one that named a generation): it then
    // sends nothing over it instead of learning it from a 1009 close.
    const maxBytes = this.deps.ctx.config.RELAY_MAX_MESSAGE_BYTES;
    // takesSnapshotBad: a client sends `snapshot-bad` only to a server that says it takes it (older ones close 4400 on it).
    this.welcomed = true;
    this.write(encodeSealedMessage((e) => writeSealedWelcome(e, this.peer, this.writable, generation, maxBytes, true)), false);
    const head = await this.catchUp(room, checked.fromStart ? 0 : cursor);
    if (head === null) return;
    this.sentSeq = head;
    this.write(encodeSealedMessage((e) => writeSealedCaughtUp(e, head)), false);
    const held = this.held ?? [];
    this.held = null;
    this.heldBytes = 0;
    for (const { seq, frame } of held) this.deliver(seq, frame);
    if (this.isClosed()) return; // dropped as a slow receiver while catching up
    for (const frame of room.presenceFrames(this.peer)) this.write(frame, false);
    this.caughtUp = true;
    this.state = 'open';
    room.maybeAskSnapshot();
    this.drainQueue();
  }

  /**
   * Sends the stored snapshot and entries after `cursor`, page by page. Each frame waits until the
   * receiver has room for it within its send allowance (maxBufferedBytes), and the next page is
   * read only once the receiver holds less than half the allowance unsent; a page is sized from
   * the room's average entry to about half the allowance (pageLimit), and holds no more entries than
   * fit in half the allowance (at least one). So a receiver that never reads holds the server to about its allowance,
   * however long the log and however large its entries. The room's head once done, or null if the
   * socket closed.
   */
  private async catchUp(room: SealedRoom, cursor: number): Promise<number | null> {
    let after = cursor;
    for (;;) {
      const limit = this.pageLimit(room);
      // Bounded in bytes too: a page of `limit` entries sized from the room's average could hold
      // `limit` frames near the limit where small entries keep the average low.
      const read = await this.deps.registry.store.read(this.roomName, after, limit, this.deps.maxBufferedBytes / 2);
      if (this.isClosed()) return null;
      if (read.generation !== this.generation) {
        // Deleted on another instance since this device was welcomed: not served the new room's
        // log; the registry drops the room, closing this device too (registry.ts moved).
        this.deps.registry.moved(room, read.generation);
        return null;
      }
      const { snapshot, entries, head } = read;
      if (snapshot) {
        const { covers, envelope } = snapshot;
        if (!(await this.roomFor(envelope.length))) return null;
        this.write(encodeSealedMessage((e) => writeSealedStoredSnapshot(e, covers, envelope)), false);
        room.snapshotSeen(covers); // stored through another instance, maybe: this device may refute it
        after = covers;
      }
      const count = entries.length;
      // Taken off the page as sent: what waits for the receiver is only the rest of the page.
      for (let entry = entries.shift(); entry; entry = entries.shift()) {
        const { seq, envelope } = entry;
        if (!(await this.roomFor(envelope.length))) return null;
        this.write(encodeSealedMessage((e) => writeSealedEntry(e, seq, envelope)), false);
        after = seq;
      }
      // A page cut short by its bytes is not the end of the log: the head says where that is.
      if (count === 0 || after >= head) return head;
      if (!(await this.drained())) return null;
    }
  }

  /**
   * Entries per catch-up page: CATCH_UP_PAGE, or, when the room stores more than the allowance,
   * as many entries of the room's average stored size (its counters: bytes over entries, the
   * snapshot counted as one more) as fit in half the allowance, from 1 to CATCH_UP_PAGE. A room of
   * small entries is read 64 at a time (not one read per entry when many devices reconnect); a
   * room of entries near the frame limit still gets pages of about half the allowance. Entries
   * are sent one by one within the allowance whatever the page (catchUp).
   */
  private pageLimit(room: SealedRoom): number {
    const { maxBufferedBytes } = this.deps;
    if (room.storedBytes + room.pendingBytes <= maxBufferedBytes) return CATCH_UP_PAGE;
    const average = Math.max(1, room.storedBytes / (room.storedEntries + 1));
    return Math.min(CATCH_UP_PAGE, Math.max(1, Math.floor(maxBufferedBytes / 2 / average)));
  }

  /**
   * Waits until the receiver can take `bytes` more within its allowance (or holds nothing unsent:
   * one frame alone always goes); false if the socket closed.
   */
  private async roomFor(bytes: number): Promise<boolean> {
    for (;;) {
      if (this.isClosed()) return false;
      const unsent = this.ws.bufferedAmount + this.output.queuedBytes;
      if (unsent === 0 || unsent + bytes <= this.deps.maxBufferedBytes) return true;
      await this.waitForReceiver(unsent);
    }
  }

  /** Waits until the receiver holds less than half its allowance unsent; false if the socket closed. */
  private async drained(): Promise<boolean> {
    for (;;) {
      if (this.isClosed()) return false;
      const unsent = this.ws.bufferedAmount + this.output.queuedBytes;
      if (unsent <= this.deps.maxBufferedBytes / 2) return true;
      await this.waitForReceiver(unsent);
    }
  }

  /**
   * One poll of a receiver holding too much unsent: the TCP socket's 'drain' is ws-internal, and
   * keepalive ends a receiver that never reads. A socket whose reading is held (onMessage) cannot
   * show its pongs: the device taking its catch-up is then its sign of life.
   */
  private async waitForReceiver(unsent: number): Promise<void> {
    if (this.throttleState?.holding && unsent < this.lastUnsent) this.deps.keepalive.touch(this.ws);
    this.lastUnsent = unsent;
    await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
  }

  private update(room: SealedRoom, id: number, envelope: Uint8Array): void {
    const { metrics } = this.deps.ctx;
    if (!this.writable) return this.count('read_only');
    const max = this.deps.quotas?.roomMaxBytes;
    // Charged as the store counts it: the envelope plus the row's overhead (store/types.ts).
    const charge = envelope.length + SEALED_ROW_OVERHEAD_BYTES;
    if (max !== undefined && room.storedBytes + room.pendingBytes + charge > max) {
      metrics.quotaRefusals.inc({ quota: 'room_bytes' });
      return this.reject(...closeWith('ERR_ROOM_QUOTA'), 'room_quota');
    }
    // Shutdown under way (sealed/registry.ts drain closed the queue): nothing would commit it.
    // Never acked, so the device keeps it and sends it again after reconnecting (PROTOCOL-sealed.md).
    if (!this.deps.registry.queue.enqueue(room.name, { envelope, ack: { peer: this.peer, id }, generation: this.generation })) return this.count('shutting_down');
    room.pendingBytes += charge;
    metrics.sealedEnvelopes.inc({ kind: 'update' });
    metrics.sealedBytes.inc(envelope.length);
  }

  private snapshot(room: SealedRoom, covers: number, envelope: Uint8Array): void {
    const { metrics } = this.deps.ctx;
    if (!this.writable) return this.count('read_only');
    const answer = room.takeSnapshotAnswer(this.peer);
    if (!answer) return this.count('unsolicited_snapshot');
    metrics.sealedEnvelopes.inc({ kind: 'snapshot' });
    metrics.sealedBytes.inc(envelope.length);
    // Covers nothing, or more than this room ever delivered: refused without a storage round trip.
    if (covers === 0 || covers > room.head) return room.snapshotRefused();
    const { registry } = this.deps;
    registry.storeSnapshot(room.name, covers, envelope, this.generation, answer.refuted).then(
      (stored) => {
        if (!stored) return room.snapshotRefused();
        metrics.sealedSnapshots.inc();
        room.compacted(covers, envelope, { peer: this.peer, sub: this.sub });
        registry.refreshStoredBytes(room);
      },
      (err: unknown) => {
        metrics.storageErrors.inc({ op: 'sealed_snapshot' });
        this.log.warn({ err }, 'sealed snapshot could not be stored');
        room.snapshotRefused();
      },
    );
  }

  /**
   * A device (any scope: read-only members may hold the key) reports that the room's snapshot
   * covering `covers` does not open. The room bounds what it costs (SealedRoom.refute); one
   * naming another than the current snapshot is dropped and counted.
   */
  private snapshotBad(room: SealedRoom, covers: number): void {
    if (!room.refute(this.peer, covers)) this.count('stale_snapshot_bad');
  }

  /**
   * The room's generation for `welcome`, after the check of the one the device knows, and whether
   * the device is served from seq 0 instead of its cursor. Undefined once closed.
   *
   * - 0 (unknown) or the room's: served from its cursor.
   * - a generation a delete of the room ended (any of them, store.generationDeleted): its cursor
   *   counts in a log that is gone; entries after it would skip the new log's first ones, and its
   *   snapshot would claim them.
   *   Closed as a device connected at the delete was (4410, final for packages/client), before
   *   `welcome`: it gets nothing of the new room and can neither upload nor snapshot its old copy
   *   into it.
   * - any other: first, storage's generation is read again (the room's is read once per load): if
   *   it is not the room's, another instance deleted the room and this one did not hear of it (its
   *   Redis subscriber away); the device may have joined the new generation there. Then `stale`
   *   (when `mayReload`): the caller drops the room here (registry.dropStale) and joins a new load.
   *   Otherwise a generation this storage never had (lost, or restored from an older copy; no
   *   delete was seen). Served as a new device, from 0, and told the room's generation: the client
   *   takes the whole room and uploads its copy again (docs/PROTOCOL-sealed.md, "Generation").
   *   A number at or over SEALED_GENERATION_LIMIT was never a generation: this case, unread.
   * - `stale: 'load'` (when `mayReload`), whatever the device names: the room held here was loaded
   *   before a delete this instance did not hear of (registry.generation dropped it); the caller
   *   joins a new load. A second such load in a row closes the socket 1012 (it reconnects).
   *
   * Checked after the new-rooms quota, so a room's row (made here when it has none) is never made
   * for a connection that quota refuses.
   */
  private async generationFor(room: SealedRoom, known: number, mayReload: boolean): Promise<{ generation: number; fromStart: boolean } | { stale: number | 'load' } | undefined> {
    const generation = await this.readBeforeWelcome(() => this.deps.registry.generation(room));
    if (generation === undefined) return undefined;
    if (generation === null) {
      // The load's head counts in a deleted log (registry.generation): join a new load, once.
      if (mayReload) return { stale: 'load' };
      this.close(...closeWith('ERR_ROOM_RELOADING'));
      return undefined;
    }
    const { current } = generation;
    if (known === 0 || known === current) return { generation: current, fromStart: false };
    if (known < SEALED_GENERATION_LIMIT) {
      const { store } = this.deps.registry;
      const deleted = await this.readBeforeWelcome(() => store.generationDeleted(this.roomName, known));
      if (deleted === undefined) return undefined;
      if (deleted) {
        this.log.debug({ known, generation: current }, 'cursor of a deleted generation of the room');
        this.close(...closeWith('ERR_ROOM_DELETED'));
        return undefined;
      }
      // Uncached: without it, a device of the new generation would be welcomed here in the deleted
      // one, served from 0 and upload into it; storage refuses that write, and the device is closed
      // 4410, final, as if its own generation had been deleted.
      const stored = await this.readBeforeWelcome(() => store.generation(this.roomName));
      if (!stored) return undefined;
      if (stored.current !== current && mayReload) {
        this.log.debug({ known, generation: current, stored: stored.current }, 'sealed room held here is in a deleted generation: loaded again');
        return { stale: stored.current };
      }
    }
    this.log.debug({ known, generation: current }, 'generation this storage never had: served from the start');
    return { generation: current, fromStart: true };
  }

  /** A read of the room's generations before `welcome`: undefined once closed (ERR_ROOM_UNAVAILABLE when storage does not answer). */
  private async readBeforeWelcome<T>(read: () => Promise<T>): Promise<T | undefined> {
    let value: T;
    try {
      value = await read();
    } catch (err) {
      if (this.isClosed()) return undefined;
      this.deps.ctx.metrics.storageErrors.inc({ op: 'sealed_read' });
      this.log.warn({ err }, 'sealed room generation could not be read');
      this.reject(...closeWith('ERR_ROOM_UNAVAILABLE'), 'load_failed');
      return undefined;
    }
    return this.isClosed() ? undefined : value;
  }

  /** A room with nothing stored counts against the sub's new rooms per hour (as on /relay). */
  private async mayOpen(room: SealedRoom): Promise<boolean> {
    const limiter = this.deps.quotas?.newRooms;
    if (!limiter || room.storedBytes + room.pendingBytes > 0 || (await limiter.take(this.sub, room.name))) return true;
    if (this.isClosed()) return false;
    this.deps.ctx.metrics.quotaRefusals.inc({ quota: 'new_rooms' });
    this.reject(...closeWith('ERR_TOO_MANY_NEW_ROOMS'), 'new_rooms_quota');
    return false;
  }

  private presence(room: SealedRoom, envelope: Uint8Array): void {
    const { config, metrics } = this.deps.ctx;
    if (envelope.length > config.SEALED_MAX_PRESENCE_BYTES) return this.reject(...closeWith('ERR_MESSAGE_TOO_BIG'), 'too_big');
    metrics.sealedEnvelopes.inc({ kind: 'presence' });
    metrics.sealedBytes.inc(envelope.length);
    this.deps.registry.presence(room, this.peer, envelope);
  }

  private failed(err: unknown): void {
    this.log.error({ err }, 'sealed connection failed');
    this.reject(...closeWith('ERR_INTERNAL'), 'internal');
  }

  private onClose(): void {
    this.state = 'closed';
    if (this.liveEntry) this.deps.ctx.live.remove(this.liveEntry);
    this.liveEntry = null;
    this.deps.ctx.unsent.release(this);
    this.deps.ctx.metrics.sealedConnections.dec();
    if (this.room) this.deps.registry.leave(this.room, this);
    this.room = null;
    this.queue = [];
    this.held = null;
    this.heldBytes = 0;
    this.throttleState?.stop();
    this.output.dropTurn();
  }
}

/**
 * One relay WebSocket: admission (room name, token, capacity), then decode -> dispatch -> send.
 * Listeners are attached synchronously when the socket opens and frames are queued until the
 * room is loaded, so nothing a fast client sends during auth or loading is lost.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { closeReason, closeWith, encodeRelayMessage, parseRoomName, readRelayMessage, writeRelayPermissionDenied } from '@sync-suite/shared';
import type { ErrorCode, RelayMessage } from '@sync-suite/shared';
import type { ServerContext } from '../context.js';
import type { LiveSocket } from '../auth/live-sockets.js';
import { RateLimiter } from '../limits/rate-limiter.js';
import { SharedListeners } from '../ws/shared-listeners.js';
import type { RelayPeer } from './fanout.js';
import type { NewRoomQuota } from '../limits/new-rooms.js';
import type { Keepalive } from '../ws/keepalive.js';
import type { Admission } from '../ws/admission.js';
import { ConnLog, connId } from '../ws/conn-log.js';
import { rawDataToBuffer } from '../ws/raw-data.js';
import { isSealedRoomType } from '../sealed/admission.js';
import { tokenRefusal } from '../auth/authenticate.js';
import { ReadThrottle } from '../ws/read-throttle.js';
import { isEmptyStateVector, RejectedInput, RoomPoisoned, type Room } from './room.js';
import { UpdateRefused } from './update-check.js';
import { PresenceRefused } from './presence.js';
import { RoomFullError, type RoomRegistry } from './room-registry.js';
import { TurnQueue, type TurnFlush } from '../ws/turn-output.js';
import type { UnsentBudget, UnsentHolder } from '../ws/unsent-budget.js';
import type { SubPacer } from '../limits/sub-pacer.js';

export interface RelayDeps {
  ctx: ServerContext;
  /** the relay's logger; a connection's lines add its id and room (made on the first line written) */
  log: FastifyBaseLogger;
  registry: RoomRegistry;
  keepalive: Keepalive;
  /** the instance's admission (ctx.admission): the socket's close releases it there */
  admission: Admission;
  /** writes what each socket was sent in one event-loop turn as one write */
  turns: TurnFlush;
  /** unsent bytes a receiver may hold before it is dropped as a slow consumer */
  maxBufferedBytes: number;
  /** ROOM_MAX_BYTES, and MAX_NEW_ROOMS_PER_SUB_PER_HOUR (null with auth off) */
  quotas?: { roomMaxBytes: number; newRooms: NewRoomQuota | null };
  /** RELAY_LARGE_SYNC_ANSWERS_PER_MINUTE per token sub (null with auth off) */
  syncAnswers?: SubPacer | null;
}

/**
 * What few relay connections ever make, in one object made on first use: an idle connection holds
 * one field for the five (docs/benchmarks.md, memory).
 */
class Rare {
  /** made on the first line written at an enabled level (idle connections write none) */
  log: ConnLog | null = null;
  id: string | null = null;
  /**
   * pauses reading while the connection is above its message rate, and holds it while the queue
   * waits for the room (enqueue); see throttle
   */
  throttle: ReadThrottle | null = null;
  /** when query-awareness was last answered (0: never; a small integer, not a boxed -Infinity), and the coalesced answer waiting for its turn */
  lastQueryAnswer = 0;
  queryTimer: NodeJS.Timeout | null = null;
  /** sync step 1s answered with LARGE_SYNC_ANSWER_BYTES or more, and when the last one was (RELAY_SYNC_ANSWER_INTERVAL_MS) */
  largeAnswers = 0;
  lastLargeAnswer = 0;
  /** a sync step 1 waiting for the interval's end (the frames behind it wait in `queue`) */
  step1Timer: NodeJS.Timeout | null = null;
}

/**
 * A sync step 2 of this many bytes or more (a whole document, or most of it) is a large answer:
 * after one (the connection's first excepted, its opening sync), the next sync step 1 on that
 * connection is answered only once RELAY_SYNC_ANSWER_INTERVAL_MS has passed. A sync step 1 is a
 * few bytes and its answer is the document: without this, one read-only connection asking again
 * and again (200 times a second within the rate limit) kept the event loop encoding the whole
 * document. An honest client's later step 1s find it up to date and are answered at once.
 */
export const LARGE_SYNC_ANSWER_BYTES = 65_536;

/**
 * Also the connection's own entry in the live sockets (token expiry and revocation), rather than
 * one more object and closure, and its own turn output (ws/turn-output.ts), rather than a
 * TurnOutput of 56 B per connection (docs/benchmarks.md, memory).
 */
export class RelayConnection extends TurnQueue implements RelayPeer, LiveSocket, UnsentHolder {
  private static readonly listeners = new SharedListeners<RelayConnection>({
    message: (conn, data) => conn.onMessage(data),
    close: (conn) => conn.onClose(),
    watchers: (conn) => conn.deps,
    // socket errors: ws/upgrade-hooks.ts's one listener counts and logs them
  });

  private room: Room | null = null;
  private queue: Uint8Array[] | null = [];
  private readOnly = false;
  private closed = false;
  // LiveSocket: the verified token's sub, jti and exp (set before the connection is registered)
  sub = '';
  jti: string | undefined = undefined;
  exp = 0;
  /** the room's name until the room is joined (then room.name), for log lines */
  private roomName: string | null = null;
  private readonly limiter: RateLimiter;
  /** unsent bytes this receiver may hold (maxBufferedBytes, raised behind a large message) */
  private allowance: number;
  /** the log, id, throttle and query-awareness timing, made on first use */
  private rare: Rare | null = null;

  constructor(
    protected readonly socket: WebSocket,
    private readonly deps: RelayDeps,
  ) {
    super();
    const ws = socket;
    const { config } = deps.ctx;
    this.limiter = new RateLimiter(config.MAX_MESSAGES_PER_SECOND, { factor: config.RATE_LIMIT_ABUSE_FACTOR, seconds: config.RATE_LIMIT_ABUSE_SECONDS });
    this.allowance = deps.maxBufferedBytes;
    deps.ctx.metrics.relayConnections.inc();
    RelayConnection.listeners.attach(ws, this); // and deps.keepalive watches it
  }

  /** TurnQueue's: the one TurnFlush of the server, from the deps rather than a field of each connection. */
  protected get turns(): TurnFlush {
    return this.deps.turns;
  }

  /** TurnQueue's: the instance's budget, told of the large messages this socket holds by reference. */
  protected override get unsentBudget(): UnsentBudget {
    return this.deps.ctx.unsent;
  }

  /** The connection's id in log lines, made when first asked for (an idle connection logs nothing; a UUID string is 56 B). */
  get id(): string {
    const rare = (this.rare ??= new Rare());
    return (rare.id ??= connId());
  }

  get endpoint(): 'relay' {
    return 'relay';
  }

  /** LiveSocket: the token expired or was revoked. */
  closeForToken(code: 'ERR_TOKEN_EXPIRED' | 'ERR_TOKEN_REVOKED' | ErrorCode): void {
    this.deny(...closeWith(code));
  }

  /** Lines carry `conn`, and `room` once the room name is known. */
  private get log(): ConnLog {
    const rare = (this.rare ??= new Rare());
    if (rare.log) return rare.log;
    const room = this.room?.name ?? this.roomName;
    return (rare.log = new ConnLog(this.deps.log, room === null ? { conn: this.id } : { conn: this.id, room }));
  }

  /** Made when the connection first exceeds its rate or fills its queue: most never do, and it holds two closures and a listener. */
  private get throttle(): ReadThrottle {
    const rare = (this.rare ??= new Rare());
    return (rare.throttle ??= new ReadThrottle(this.socket, () => this.limiter.waitMs(), () => this.deps.keepalive.touch(this.socket)));
  }

  /** Admission: room name, token, shutdown, capacity, then load and join. */
  /** `onAdmitted`: the token of `sub` was verified; the instance's admission may still refuse it (MAX_CONNECTIONS_PER_SUB). */
  async open(roomName: string, token: string | undefined, onAdmitted?: (sub: string) => ErrorCode | null): Promise<void> {
    const { ctx, registry } = this.deps;
    const parsed = parseRoomName(roomName, ctx.roomPolicy);
    if (!parsed.ok) return this.reject(...closeWith('ERR_ROOM_NAME'), 'bad_room_name');
    // SEALED_ROOM_TYPES: a misconfigured client must not put such a room in plaintext.
    if (isSealedRoomType(ctx.config, parsed.room.type)) return this.deny(...closeWith('ERR_ROOM_SEALED'));
    this.roomName = roomName;
    this.rare?.log?.bind('room', roomName);
    const auth = await ctx.auth.verify(token, 'relay');
    if (!auth.ok) return this.deny(...closeWith(tokenRefusal(auth.reason)));
    if (!ctx.auth.covers(auth.claims, roomName, 'relay')) return this.deny(...closeWith('ERR_FORBIDDEN_ROOM'));
    this.readOnly = auth.claims.scope === 'read';
    if (this.closed) return;
    const refused = onAdmitted?.(auth.claims.sub);
    if (refused) return this.reject(...closeWith(refused), 'too_many_connections_per_sub');
    if (ctx.lifecycle.shuttingDown) return this.reject(...closeWith('ERR_SHUTTING_DOWN'), 'shutting_down');
    try {
      this.room = await registry.join(roomName, this);
    } catch (err) {
      if (err instanceof RoomFullError) return this.reject(...closeWith('ERR_ROOM_FULL'), 'room_full');
      // Stock clients retry a 1011 every few seconds: report a failing room once per period.
      if (registry.shouldReport(`load:${roomName}`)) this.log.warn({ detail: err instanceof Error ? err.message : String(err) }, 'relay room could not be loaded');
      return this.reject(...closeWith('ERR_ROOM_UNAVAILABLE'), 'load_failed');
    }
    this.roomName = null; // room.name from now on
    if (this.closed) return registry.leave(this.room, this);
    if (!(await this.mayOpen(this.room, auth.claims.sub)) || this.closed) return;
    this.sub = auth.claims.sub;
    this.jti = auth.claims.jti;
    this.exp = auth.claims.exp;
    ctx.live.add(this);
    this.handleQueued();
  }

  /**
   * Handles the frames that waited (for the room, or behind a sync step 1 waiting for its answer),
   * in order; one of them may be such a step 1 again, and what follows it waits once more.
   */
  private handleQueued(): void {
    const queued = this.queue ?? [];
    this.queue = null;
    for (let i = 0; i < queued.length; i++) {
      if (this.closed) return;
      // handle() may have set it again (a sync step 1 waiting): the rest waits behind that one
      const waiting = this.queue as Uint8Array[] | null;
      if (waiting) {
        waiting.push(...queued.slice(i));
        return;
      }
      this.handle(queued[i] as Uint8Array);
    }
    // Reading held while the queue was full (enqueue) goes on, unless the rate limiter's wait holds it.
    if (!this.closed && !this.queue) this.rare?.throttle?.release();
  }

  /**
   * Queues one message for the end of this turn (the same bytes object may go to many peers; it
   * is neither copied nor changed until then). A receiver holding too much unsent data is dropped.
   */
  send(message: Uint8Array): void {
    const ws = this.socket;
    if (ws.readyState !== ws.OPEN) return;
    const buffered = ws.bufferedAmount + this.queuedBytes;
    if (buffered === 0) this.allowance = this.deps.maxBufferedBytes;
    else if (buffered > this.allowance) return this.slowConsumer('connection');
    // The absolute cap: a reader that holds anything unsent never gets past it, however large the
    // messages (one message alone always goes: it may be a big room's step 2).
    else if (buffered + message.length > this.deps.ctx.config.RELAY_MAX_OUTGOING_BYTES) return this.slowConsumer('connection');
    // A large message (a big room's step 2) may exceed the bound by itself: the bound then
    // applies to what is queued behind it, so a big document never locks its readers out.
    if (message.length > this.deps.maxBufferedBytes / 4) this.allowance = Math.max(this.allowance, buffered + message.length + this.deps.maxBufferedBytes);
    this.push(message);
    // The instance's budget of unsent bytes, across every connection (ws/unsent-budget.ts).
    this.deps.ctx.unsent.charge(this, this.unsentBytes);
  }

  /** UnsentHolder: the instance is over MAX_UNSENT_BYTES_TOTAL and this receiver holds the most. */
  shedUnsent(): void {
    if (!this.closed) return this.slowConsumer('instance');
    // Closing: its close frame waits behind what it does not read.
    this.socket.terminate();
  }

  /** Closes with a 4xxx/1xxx code, counting the refusal. */
  reject(code: number, reason: string, metricReason: string): void {
    this.deps.ctx.metrics.rejectedMessages.inc({ endpoint: 'relay', reason: metricReason });
    this.close(code, reason);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.log.debug({ code, reason }, 'closing relay connection');
    this.flushTurn(); // what was sent before the close goes before the close frame
    this.socket.close(code, closeReason(reason));
    // The close handshake reads the client's close frame: a hold (enqueue) would leave it unread
    // until ws's close timeout destroys the socket.
    this.rare?.throttle?.release();
  }

  /**
   * A receiver that does not read would grow server memory without bound: drop it. `over`: its
   * own allowance ('connection') or the instance's MAX_UNSENT_BYTES_TOTAL ('instance').
   */
  private slowConsumer(over: 'connection' | 'instance'): void {
    if (this.closed) return;
    this.closed = true;
    this.dropTurn();
    this.deps.ctx.metrics.rejectedMessages.inc({ endpoint: 'relay', reason: 'slow_consumer' });
    this.log.info({ buffered: this.socket.bufferedAmount, over }, 'slow relay receiver dropped');
    this.socket.terminate();
  }

  private deny(code: number, reason: string): void {
    // Stock clients show this reason; auth failures are already counted by the authenticator.
    this.send(encodeRelayMessage((e) => writeRelayPermissionDenied(e, reason)));
    this.close(code, reason);
  }

  private onMessage(data: RawData): void {
    if (this.closed) return;
    const frame = rawDataToBuffer(data);
    const { config } = this.deps.ctx;
    if (frame.length > config.RELAY_MAX_MESSAGE_BYTES) return this.reject(...closeWith('ERR_MESSAGE_TOO_BIG'), 'too_big');
    const pace = this.limiter.take();
    if (pace === 'abuse') return this.reject(...closeWith('ERR_RATE_LIMITED'), 'rate_limited');
    if (pace === 'slow' && this.throttle.pause()) this.deps.ctx.metrics.rateLimitPauses.inc({ endpoint: 'relay' });
    if (this.queue) this.enqueue(this.queue, frame);
    else this.handle(frame);
  }

  /**
   * Frames that arrive while the room loads (or the new-room quota is asked) wait in the queue. Past
   * one message's worth of bytes, reading stops until the room is open, so a client cannot park
   * the rate limiter's whole burst of maximum-size frames (200 x RELAY_MAX_MESSAGE_BYTES) in
   * server memory during a slow load; its data waits in TCP instead, and nothing is lost.
   */
  private enqueue(queue: Uint8Array[], frame: Uint8Array): void {
    queue.push(frame);
    if (this.rare?.throttle?.holding) return;
    let bytes = 0;
    for (const f of queue) bytes += f.length;
    if (bytes > this.deps.ctx.config.RELAY_MAX_MESSAGE_BYTES) this.throttle.hold();
  }

  private handle(frame: Uint8Array): void {
    const decoded = readRelayMessage(frame);
    if (!decoded.ok) return this.reject(...closeWith('ERR_PROTOCOL'), 'malformed');
    try {
      this.dispatch(decoded.message, frame);
    } catch (err) {
      this.failed(err);
    }
  }

  private dispatch(message: RelayMessage, frame: Uint8Array): void {
    const room = this.room as Room;
    switch (message.type) {
      case 'sync-step1':
        return this.step1(room, message.stateVector);
      case 'sync-step2':
        return this.update(room, message.update);
      case 'update':
        return this.update(room, message.update, frame);
      case 'awareness':
        return void room.applyAwareness(message.update, this, frame);
      case 'query-awareness':
        return this.queryAwareness(room);
      case 'auth':
        return; // clients never send auth messages that mean anything to a server
      case 'unknown':
        // The stock server ignores unknown types; count them so they are visible.
        this.deps.ctx.metrics.rejectedMessages.inc({ endpoint: 'relay', reason: 'unknown_type' });
        return;
    }
  }

  /** A room with nothing stored counts against the sub's new rooms per hour (in Redis with REDIS_URL). */
  private async mayOpen(room: Room, sub: string): Promise<boolean> {
    const limiter = this.deps.quotas?.newRooms;
    if (!limiter || room.storedBytes > 0 || (await limiter.take(sub, room.name))) return true;
    if (this.closed) return false;
    this.deps.ctx.metrics.quotaRefusals.inc({ quota: 'new_rooms' });
    this.reject(...closeWith('ERR_TOO_MANY_NEW_ROOMS'), 'new_rooms_quota');
    return false;
  }

  /**
   * Answers at most once per RELAY_AWARENESS_QUERY_INTERVAL_MS: queries within the interval share
   * one answer at its end, so tiny queries cannot multiply a room's (large) presence states.
   */
  private queryAwareness(room: Room): void {
    const rare = (this.rare ??= new Rare());
    if (rare.queryTimer) {
      this.deps.ctx.metrics.rejectedMessages.inc({ endpoint: 'relay', reason: 'awareness_query_coalesced' });
      return;
    }
    const wait = rare.lastQueryAnswer + this.deps.ctx.config.RELAY_AWARENESS_QUERY_INTERVAL_MS - Date.now();
    const answer = (): void => {
      rare.queryTimer = null;
      rare.lastQueryAnswer = Date.now();
      if (!this.closed && !room.unloaded) this.send(room.awarenessMessage());
    };
    if (wait <= 0) return answer();
    rare.queryTimer = setTimeout(answer, wait);
  }

  /**
   * Answers a sync step 1, or, within RELAY_SYNC_ANSWER_INTERVAL_MS of a large answer (not the
   * connection's first), at the interval's end: reading is held and later frames wait behind it,
   * so every step 1 still gets its own answer in order (packages/client matches answers to its
   * step 1s), and a client asking for the document over and over gets it once per interval.
   */
  private step1(room: Room, stateVector: Uint8Array): void {
    let wait = this.rare && this.rare.largeAnswers >= 2 ? this.rare.lastLargeAnswer + this.deps.ctx.config.RELAY_SYNC_ANSWER_INTERVAL_MS - Date.now() : 0;
    // The sub's large answers that had to be encoded: a connection per request is no way around
    // the wait above. An empty state vector's answer is the room's shared one (Room.wholeAnswer).
    const empty = isEmptyStateVector(stateVector);
    if (!empty && this.deps.syncAnswers) wait = Math.max(wait, this.deps.syncAnswers.waitMs(this.sub));
    if (wait <= 0) return this.answerStep1(room, stateVector);
    const rare = (this.rare ??= new Rare());
    this.deps.ctx.metrics.rejectedMessages.inc({ endpoint: 'relay', reason: 'sync_step1_paced' });
    this.queue = [];
    this.throttle.hold();
    rare.step1Timer = setTimeout(() => {
      rare.step1Timer = null;
      if (this.closed || room.unloaded) return;
      try {
        this.answerStep1(room, stateVector);
      } catch (err) {
        return this.failed(err);
      }
      this.handleQueued();
    }, wait);
  }

  private answerStep1(room: Room, stateVector: Uint8Array): void {
    const { bytes, shared } = room.answerStep1(this, stateVector);
    if (bytes < LARGE_SYNC_ANSWER_BYTES) return;
    if (!shared) this.deps.syncAnswers?.charge(this.sub);
    const rare = (this.rare ??= new Rare());
    rare.largeAnswers++;
    rare.lastLargeAnswer = Date.now();
  }

  private update(room: Room, update: Uint8Array, frame?: Uint8Array): void {
    if (this.readOnly) {
      this.deps.ctx.metrics.rejectedMessages.inc({ endpoint: 'relay', reason: 'read_only' });
      return;
    }
    const max = this.deps.quotas?.roomMaxBytes;
    if (max !== undefined && room.storedBytes + update.length > max) {
      this.deps.ctx.metrics.quotaRefusals.inc({ quota: 'room_bytes' });
      return this.reject(...closeWith('ERR_ROOM_QUOTA'), 'room_quota');
    }
    room.applyUpdate(update, this, frame);
  }

  private failed(err: unknown): void {
    if (err instanceof PresenceRefused) {
      this.log.info({ limit: err.limit, detail: err.message }, 'relay presence refused');
      if (err.limit === 'malformed') return this.reject(...closeWith('ERR_PROTOCOL'), 'bad_awareness');
      return this.reject(...withDetail(closeWith('ERR_AWARENESS_TOO_COSTLY'), err.limit), `presence_${err.limit}`);
    }
    if (err instanceof UpdateRefused) {
      this.log.info({ limit: err.limit, detail: err.message }, 'relay update refused');
      if (err.limit === 'malformed') return this.reject(...closeWith('ERR_PROTOCOL'), 'bad_update');
      return this.reject(...withDetail(closeWith('ERR_UPDATE_TOO_COSTLY'), err.limit), `update_${err.limit}`);
    }
    if (err instanceof RejectedInput) {
      this.log.info({ reason: err.reason, detail: err.message }, 'relay input refused');
      return this.reject(...closeWith('ERR_PROTOCOL'), err.reason);
    }
    if (err instanceof RoomPoisoned && this.room) {
      // Reload the room from storage: every other connection reconnects and resyncs.
      // A client's update caused it: info without a stack, counted below as bad_update.
      this.log.info({ detail: String(err.failure) }, 'update failed while applying; evicting the room');
      const room = this.room;
      this.reject(...closeWith('ERR_PROTOCOL'), 'bad_update');
      this.deps.registry.reload(room);
      return;
    }
    this.log.error({ err }, 'relay message handling failed');
    this.reject(...closeWith('ERR_INTERNAL'), 'internal');
  }

  private onClose(): void {
    this.closed = true;
    this.deps.ctx.live.remove(this); // ignored when not registered
    this.deps.ctx.unsent.release(this);
    const rare = this.rare;
    if (rare?.queryTimer) clearTimeout(rare.queryTimer);
    if (rare?.step1Timer) clearTimeout(rare.step1Timer);
    if (rare) rare.queryTimer = rare.step1Timer = null;
    rare?.throttle?.stop();
    this.deps.ctx.metrics.relayConnections.dec();
    if (this.room) this.deps.registry.leave(this.room, this);
    this.room = null;
    this.queue = null;
    this.dropTurn();
  }
}

/** The error's close code and message, with the limit that was passed named after it. */
function withDetail([code, message]: [number, string], detail: string): [number, string] {
  return [code, `${message}: ${detail}`];
}

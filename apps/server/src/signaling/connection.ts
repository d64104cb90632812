/**
 * One signaling socket: frames are size- and rate-checked, queued until the token is
 * verified, decoded by the pure codec and handed to the message handlers. Closing (by
 * either side) removes the connection from every topic exactly once.
 */
import type { RawData, WebSocket } from 'ws';
import { readSignalingMessage, type ErrorCode, type RoomTokenClaims } from '@sync-suite/shared';
import { RateLimiter } from '../limits/rate-limiter.js';
import { rawDataToBuffer } from '../ws/raw-data.js';
import { ReadThrottle } from '../ws/read-throttle.js';
import { SharedListeners } from '../ws/shared-listeners.js';
import { TurnQueue, type TurnFlush } from '../ws/turn-output.js';
import type { UnsentBudget, UnsentHolder } from '../ws/unsent-budget.js';
import { ConnLog, connId, levelEnabled } from '../ws/conn-log.js';
import type { LiveSocket } from '../auth/live-sockets.js';
import type { SignalingDeps } from './deps.js';
import { handleMessage, type HandlerConnection } from './handlers.js';
import { textFrame } from './publish-frame.js';
import { closeForCause, refusal, type Refusal } from './refusal.js';
import { countOf, holds, itemsOf, withItem, withoutItem, type OneOrSet } from '../collections/one-or-set.js';
import { takeFrom } from '../limits/topic-join-budgets.js';

type State = 'authenticating' | 'open' | 'closed';

/** Before the token is verified the connection's claims cover nothing: no rooms (one array for every connection). */
const NO_ROOMS = Object.freeze([]) as unknown as string[];

/**
 * What few signaling connections ever make, in one object made on first use: an idle connection
 * holds one field for the three (docs/benchmarks.md, memory).
 */
class Rare {
  /** pauses reading while the connection is above its message rate (see throttle) */
  throttle: ReadThrottle | null = null;
  /** made on the first line written (idle connections write none; see debug) */
  log: ConnLog | null = null;
  id: string | null = null;
}

const listeners = new SharedListeners<SignalingConnection>({
  message: (conn, data) => conn.onFrame(data),
  // socket errors: ws/upgrade-hooks.ts's one listener counts and logs them
  close: (conn, code) => {
    conn.debug({ code }, 'signaling socket closed');
    conn.teardown();
    conn.stopThrottle();
    conn.releaseUnsent();
  },
  watchers: (conn) => conn.watchers,
});

/**
 * Also the connection's own entry in the live sockets (token expiry and revocation), rather than
 * one more object and closure, its own turn output (ws/turn-output.ts): this file decides what
 * is delivered and when, TurnQueue writes it; and its own claims: the verified token's sub, exp,
 * rooms, scope and jti are fields of the connection rather than of a copied claims object (64 B).
 */
export class SignalingConnection extends TurnQueue implements HandlerConnection, LiveSocket, RoomTokenClaims, UnsentHolder {
  // RoomTokenClaims (and LiveSocket): the verified token's, covering nothing until then
  sub = '';
  exp = 0;
  rooms: string[] = NO_ROOMS;
  scope: RoomTokenClaims['scope'] = 'read';
  jti: string | undefined = undefined;
  /**
   * The subscribed topics: none, the one topic (most connections hold one: a y-webrtc client
   * subscribes to its room), or a Set of two or more (collections/one-or-set.ts). A Set of one costs about 150 B.
   */
  private topicState: OneOrSet<string> = null;
  private state: State = 'authenticating';
  /** frames received while the token is verified; made on the first */
  private pending: Buffer[] | null = null;
  private readonly limiter: RateLimiter;
  private rare: Rare | null = null;
  /**
   * The topic-join budget as one number (a GCRA): when the budget is full again, in
   * performance.now() ms; 0 when it always was.
   */
  private joinsFullAt = 0;

  constructor(
    protected readonly socket: WebSocket,
    private readonly deps: SignalingDeps,
  ) {
    super();
    this.limiter = new RateLimiter(deps.limits.messagesPerSecond, deps.limits.abuse);
    deps.metrics.signalingConnections.inc();
    // Attached synchronously: frames that arrive while the token is checked are queued.
    listeners.attach(socket, this); // and deps.keepalive watches it
  }

  /** TurnQueue's: the one TurnFlush of the server, from the deps rather than a field of each connection. */
  protected get turns(): TurnFlush {
    return this.deps.turns;
  }

  /** TurnQueue's: the instance's budget, told of the large frames this socket holds by reference. */
  protected override get unsentBudget(): UnsentBudget {
    return this.deps.unsent;
  }

  /** The socket's keepalive and admission (its deps), released by the shared close listener. */
  get watchers(): SignalingDeps {
    return this.deps;
  }

  /**
   * Every line this connection writes is at debug level, with `conn` and `endpoint` bindings; the
   * ConnLog is made on the first line written, as a held ConnLog and its bindings cost about 100 B.
   */
  debug(obj: object | string, msg?: string): void {
    if (!levelEnabled(this.deps.log, 'debug')) return;
    const rare = (this.rare ??= new Rare());
    (rare.log ??= new ConnLog(this.deps.log, { conn: this.id, endpoint: 'signal' })).debug(obj, msg);
  }

  hasTopic(topic: string): boolean {
    return holds(this.topicState, topic);
  }

  /** The connection's id in log lines, made when first asked for (an idle connection logs nothing; a UUID string is 56 B). */
  get id(): string {
    const rare = (this.rare ??= new Rare());
    return (rare.id ??= connId());
  }

  get topicCount(): number {
    return countOf(this.topicState);
  }

  addTopic(topic: string): void {
    this.topicState = withItem(this.topicState, topic);
  }

  takeTopicJoins(n: number): boolean {
    // with auth on the budget is the token sub's (limits/topic-join-budgets.ts), else the socket's
    if (this.deps.auth.enabled) return this.deps.topicJoinBudgets.take(this.sub, n);
    const { intervalMs, burst } = this.deps.limits.topicJoins;
    const next = takeFrom(this.joinsFullAt, n, performance.now(), intervalMs, burst);
    if (next === null) return false;
    this.joinsFullAt = next;
    return true;
  }

  deleteTopic(topic: string): boolean {
    if (!holds(this.topicState, topic)) return false;
    this.topicState = withoutItem(this.topicState, topic);
    return true;
  }

  /** The verified claims (HandlerConnection): the connection's own fields. */
  get claims(): RoomTokenClaims {
    return this;
  }

  get endpoint(): 'signal' {
    return 'signal';
  }
  closeForToken(code: 'ERR_TOKEN_EXPIRED' | 'ERR_TOKEN_REVOKED' | ErrorCode): void {
    this.refuse(refusal(code, code === 'ERR_TOKEN_EXPIRED' ? 'token_expired' : 'token_revoked'));
  }

  /** Made when the connection first exceeds its rate: most never do, and it holds two closures. */
  private get throttle(): ReadThrottle {
    const rare = (this.rare ??= new Rare());
    return (rare.throttle ??= new ReadThrottle(this.socket, () => this.limiter.waitMs(), () => this.deps.keepalive.touch(this.socket)));
  }

  /** Verified claims arrived: process what was queued meanwhile. */
  authenticated(claims: RoomTokenClaims): void {
    if (this.state !== 'authenticating') return;
    // Only what the connection reads later, in its own fields (not iat).
    this.sub = claims.sub;
    this.exp = claims.exp;
    this.rooms = claims.rooms;
    this.scope = claims.scope;
    this.jti = claims.jti;
    this.state = 'open';
    this.debug({ sub: claims.sub }, 'signaling connection authenticated');
    this.deps.live.add(this);
    if (this.state !== 'open') return; // revoked while it was being verified
    const queued = this.pending;
    this.pending = null;
    if (queued) for (const data of queued) {
      if (this.state !== 'open') break;
      this.process(data);
    }
  }

  refuse(r: Refusal): void {
    if (this.state === 'closed') return;
    this.debug({ reason: r.reason, detail: r.detail }, 'signaling connection refused');
    this.flushTurn(); // what was delivered before the refusal goes out before the close frame
    this.teardown();
    closeForCause(this.socket, this.deps.metrics, r);
  }

  deliver(frame: Buffer): void {
    if (this.state !== 'open') return;
    if (this.socket.bufferedAmount + this.queuedBytes > this.deps.limits.maxBufferedBytes) return this.slowConsumer('connection');
    // Held until the end of the turn, so that the frames one receiver gets in one turn leave in
    // one write: on loopback the kernel's share of a small frame costs more than our JavaScript.
    // A frame is whole (publish-frame.ts) and the same Buffer for every receiver.
    this.pushFrame(frame);
    // The instance's budget of unsent bytes, across every connection (ws/unsent-budget.ts).
    this.deps.unsent.charge(this, this.unsentBytes);
  }

  /** UnsentHolder: the instance is over MAX_UNSENT_BYTES_TOTAL and this receiver holds the most. */
  shedUnsent(): void {
    if (this.state !== 'closed') return this.slowConsumer('instance');
    // Refused and closing: its close frame waits behind what it does not read.
    this.socket.terminate();
  }

  /**
   * A receiver that does not read would grow server memory without bound: dropped. `over`: its
   * own allowance ('connection') or the instance's MAX_UNSENT_BYTES_TOTAL ('instance').
   */
  private slowConsumer(over: 'connection' | 'instance'): void {
    this.deps.metrics.rejectedMessages.inc({ endpoint: 'signal', reason: 'slow_consumer' });
    this.debug({ over }, 'slow signaling receiver dropped');
    this.dropTurn();
    this.teardown();
    this.socket.terminate();
  }

  /** After this turn's publishes, if there are any (a pong must not overtake them). */
  sendText(text: string): void {
    if (this.state !== 'open') return;
    if (!this.turnPending) this.socket.send(text);
    else this.deliver(textFrame(Buffer.from(text)));
  }

  /** @internal called by the shared 'message' listener */
  onFrame(raw: RawData): void {
    if (this.state === 'closed') return;
    this.deps.keepalive.touch(this.socket);
    const data = rawDataToBuffer(raw);
    if (data.byteLength > this.deps.limits.maxMessageBytes) return this.refuse(refusal('ERR_MESSAGE_TOO_BIG', 'too_big'));
    const pace = this.limiter.take();
    if (pace === 'abuse') return this.refuse(refusal('ERR_RATE_LIMITED', 'rate_limited'));
    if (pace === 'slow' && this.throttle.pause()) this.deps.metrics.rateLimitPauses.inc({ endpoint: 'signal' });
    if (this.state === 'authenticating') {
      (this.pending ??= []).push(data);
      return;
    }
    this.process(data);
  }

  /** Text and binary frames are both read as UTF-8 JSON, as the stock server does. */
  private process(data: Buffer): void {
    const read = readSignalingMessage(data.toString('utf8'));
    if (!read.ok) return this.refuse(refusal('ERR_PROTOCOL', read.reason, read.detail));
    this.deps.messageCounts.add(read.message.type);
    const refused = handleMessage(this.deps, this, read.message, data);
    if (refused) this.refuse(refused);
  }

  /**
   * The socket closed: the rate wait's timer ends. Not part of teardown, which a refusal runs
   * before the close handshake: a socket paused for its rate reads the peer's close frame when
   * that timer resumes it (ws/read-throttle.ts); stopped there, it waited for CLOSE_TIMEOUT_MS.
   */
  stopThrottle(): void {
    this.rare?.throttle?.stop();
  }

  /**
   * The socket closed: its unsent bytes are no longer the instance's. Not part of teardown, which
   * a refusal runs while what was sent before it is still being written.
   */
  releaseUnsent(): void {
    this.deps.unsent.release(this);
  }

  /** Idempotent: leave every topic, update the gauge. */
  teardown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.deps.live.remove(this);
    this.pending = null;
    const topics = this.topicState;
    this.topicState = null;
    for (const topic of itemsOf(topics)) this.deps.bus.leave(topic, this);
    this.deps.metrics.signalingConnections.dec();
  }
}

/**
 * One signaling socket: frames are size- and rate-checked, queued until the token is
 * verified, decoded by the pure codec and handed to the message handlers. Closing (by
 * either side) removes the connection from every topic exactly once.
 */
import type { RawData, WebSocket } from 'ws';
import { readSignalingMessage, type RoomTokenClaims } from '@sync-suite/shared';
import { RateLimiter } from '../limits/rate-limiter.js';
import { rawDataToBuffer } from '../ws/raw-data.js';
import { ReadThrottle } from '../ws/read-throttle.js';
import type { ConnLog } from '../ws/conn-log.js';
import type { SignalingDeps } from './deps.js';
import { handleMessage, type HandlerConnection } from './handlers.js';
import { closeForCause, refusal, type Refusal } from './refusal.js';

type State = 'authenticating' | 'open' | 'closed';

export class SignalingConnection implements HandlerConnection {
  readonly topics = new Set<string>();
  claims: RoomTokenClaims = { sub: '', exp: 0, rooms: [], scope: 'read' };
  private state: State = 'authenticating';
  private pending: Buffer[] = [];
  private readonly limiter: RateLimiter;
  /** pauses reading while the connection is above its message rate; made on first use (see throttle) */
  private throttleState: ReadThrottle | null = null;
  private unregister: (() => void) | null = null;

  constructor(
    readonly id: string,
    private readonly socket: WebSocket,
    private readonly deps: SignalingDeps,
    private readonly log: ConnLog,
  ) {
    this.limiter = new RateLimiter(deps.limits.messagesPerSecond, deps.limits.abuse);
    deps.metrics.signalingConnections.inc();
    deps.keepalive.watch(socket);
    // Attached synchronously: frames that arrive while the token is checked are queued.
    socket.on('message', (data) => this.onFrame(data));
    socket.on('error', (err) => this.log.debug({ detail: err.message }, 'signaling socket error'));
    socket.on('close', (code) => {
      this.log.debug({ code }, 'signaling socket closed');
      this.teardown();
    });
  }

  /** Made when the connection first exceeds its rate: most never do, and it holds two closures and a listener. */
  private get throttle(): ReadThrottle {
    return (this.throttleState ??= new ReadThrottle(this.socket, () => this.limiter.waitMs(), () => this.deps.keepalive.touch(this.socket)));
  }

  /** Verified claims arrived: process what was queued meanwhile. */
  authenticated(claims: RoomTokenClaims): void {
    if (this.state !== 'authenticating') return;
    this.claims = claims;
    this.state = 'open';
    this.log.debug({ sub: claims.sub }, 'signaling connection authenticated');
    this.unregister = this.deps.live.add({
      sub: claims.sub,
      jti: claims.jti,
      exp: claims.exp,
      endpoint: 'signal',
      close: (code) => this.refuse(refusal(code, code === 'ERR_TOKEN_EXPIRED' ? 'token_expired' : 'token_revoked')),
    });
    if (this.state !== 'open') return; // revoked while it was being verified
    const queued = this.pending;
    this.pending = [];
    for (const data of queued) {
      if (this.state !== 'open') break;
      this.process(data);
    }
  }

  refuse(r: Refusal): void {
    if (this.state === 'closed') return;
    this.log.debug({ reason: r.reason, detail: r.detail }, 'signaling connection refused');
    this.teardown();
    closeForCause(this.socket, this.deps.metrics, r);
  }

  deliver(frame: Buffer): void {
    if (this.state !== 'open') return;
    if (this.socket.bufferedAmount > this.deps.limits.maxBufferedBytes) {
      // A receiver that does not read would grow server memory without bound.
      this.deps.metrics.rejectedMessages.inc({ endpoint: 'signal', reason: 'slow_consumer' });
      this.log.debug('slow signaling receiver dropped');
      this.teardown();
      this.socket.terminate();
      return;
    }
    this.deps.corks.cork(this.socket);
    this.socket.send(frame, { binary: false });
  }

  sendText(text: string): void {
    if (this.state === 'open') this.socket.send(text);
  }

  private onFrame(raw: RawData): void {
    if (this.state === 'closed') return;
    this.deps.keepalive.touch(this.socket);
    const data = rawDataToBuffer(raw);
    if (data.byteLength > this.deps.limits.maxMessageBytes) return this.refuse(refusal('ERR_MESSAGE_TOO_BIG', 'too_big'));
    const pace = this.limiter.take();
    if (pace === 'abuse') return this.refuse(refusal('ERR_RATE_LIMITED', 'rate_limited'));
    if (pace === 'slow' && this.throttle.pause()) this.deps.metrics.rateLimitPauses.inc({ endpoint: 'signal' });
    if (this.state === 'authenticating') {
      this.pending.push(data);
      return;
    }
    this.process(data);
  }

  /** Text and binary frames are both read as UTF-8 JSON, as the stock server does. */
  private process(data: Buffer): void {
    const read = readSignalingMessage(data.toString('utf8'));
    if (!read.ok) return this.refuse(refusal('ERR_PROTOCOL', read.reason, read.detail));
    this.deps.metrics.signalingMessages.inc({ type: read.message.type });
    const refused = handleMessage(this.deps, this, read.message);
    if (refused) this.refuse(refused);
  }

  /** Idempotent: leave every topic, update the gauge. */
  private teardown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.unregister?.();
    this.unregister = null;
    this.pending = [];
    for (const topic of this.topics) this.deps.bus.leave(topic, this);
    this.topics.clear();
    this.deps.metrics.signalingConnections.dec();
  }
}

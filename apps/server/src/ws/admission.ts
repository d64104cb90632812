/**
 * Who may open a WebSocket at all, decided on the HTTP upgrade request before any WebSocket
 * exists (an HTTP refusal costs no socket state and no close handshake):
 * - the instance cap counts only admitted sockets (token verified), so refused or
 *   unauthenticated sockets, which are closed at once, never lock real clients out;
 * - each source address has a budget of unauthenticated upgrades per minute; an upgrade takes
 *   one and gives it back once its token is verified, so only refusals use it up;
 * - each token `sub` may hold MAX_CONNECTIONS_PER_SUB admitted sockets on the instance (/signal,
 *   /relay and /sealed together): one token holder cannot take every slot of the cap and lock
 *   everyone else out. With auth off every caller is the same 'anonymous' sub, so nothing is
 *   counted per sub then (as MAX_NEW_ROOMS_PER_SUB_PER_HOUR, limits/quotas-plugin.ts).
 * Token and room refusals still happen on the open socket with the documented close codes
 * (see docs/errors.md, "Refused connections").
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { ErrorCode } from '@sync-suite/shared';
import { AddressBuckets } from '../limits/address-buckets.js';

export interface AdmissionLimits {
  /** MAX_CONNECTIONS: admitted WebSockets on this instance */
  maxConnections: number;
  /** MAX_UNAUTHENTICATED_UPGRADES_PER_MINUTE, per source address */
  unauthenticatedPerMinute: number;
  /** MAX_CONNECTIONS_PER_SUB: admitted WebSockets of one token `sub` on this instance; null with auth off */
  maxPerSub: number | null;
}

/** Upgrades whose token is being checked may add this share to the cap, at most. */
const PENDING_HEADROOM = 0.1;
const MIN_PENDING = 100;

export class Admission {
  /** each admitted socket, and the sub it is counted against ('' when none) */
  private readonly admitted = new Map<WebSocket, string>();
  /** admitted sockets per sub (only subs holding at least one) */
  private readonly perSub = new Map<string, number>();
  /**
   * Every open WebSocket of the instance, admitted or not (watch() adds it, its close removes it).
   * ws's own client tracking (clientTracking, off in app.ts) put a closure and its context on
   * every socket and made its 'close' listeners an array of two: about 190 B per socket
   * (docs/benchmarks.md, memory). Each path here removes a socket from its one 'close' listener:
   * the safety net's, the admitted one's, or its owner's through release().
   */
  private readonly open = new Set<WebSocket>();
  private readonly perAddress: AddressBuckets;
  private readonly maxSockets: number;

  constructor(private readonly limits: AdmissionLimits) {
    this.perAddress = new AddressBuckets(limits.unauthenticatedPerMinute);
    this.maxSockets = limits.maxConnections + Math.max(MIN_PENDING, Math.ceil(limits.maxConnections * PENDING_HEADROOM));
  }

  /** Admitted WebSockets right now. */
  get count(): number {
    return this.admitted.size;
  }

  /** Every open WebSocket of the instance, admitted or not (closed with the rest at shutdown). */
  get sockets(): ReadonlySet<WebSocket> {
    return this.open;
  }

  /** For an upgrade request: the refusal, or null (one token of the address taken). */
  check(req: FastifyRequest): ErrorCode | null {
    if (this.admitted.size >= this.limits.maxConnections || this.open.size >= this.maxSockets) return 'ERR_TOO_MANY_CONNECTIONS';
    if (!this.perAddress.take(req.ip)) return 'ERR_TOO_MANY_UPGRADES';
    this.addresses.set(req.raw, req.ip);
    return null;
  }

  /**
   * The socket's token (of `sub`) was verified: it counts toward the cap until it closes. Returns
   * the refusal when `sub` already holds MAX_CONNECTIONS_PER_SUB admitted sockets (the caller
   * closes the socket with its code; it is not admitted, and its address's unit is given back: a
   * valid token is not an unauthenticated upgrade).
   */
  admit(req: FastifyRequest | IncomingMessage, ws: WebSocket, sub?: string): ErrorCode | null {
    if (ws.readyState !== ws.OPEN) return null;
    if (this.admitted.has(ws)) return this.countLate(ws, sub);
    const raw = 'raw' in req ? req.raw : req;
    const address = this.addresses.get(raw);
    this.addresses.delete(raw);
    if (address !== undefined) this.perAddress.refund(address);
    const max = this.limits.maxPerSub;
    const key = max === null || sub === undefined ? '' : sub;
    if (max !== null && key !== '') {
      const held = this.perSub.get(key) ?? 0;
      if (held >= max) return 'ERR_TOO_MANY_CONNECTIONS_PER_SUB';
      this.perSub.set(key, held + 1);
    }
    this.admitted.set(ws, key);
    if (!this.adopted.delete(ws)) ws.on('close', this.onAdmittedClose);
    this.unwatch(ws);
    return null;
  }

  /**
   * The safety net (watch()) admitted the socket under no sub because its endpoint's token check
   * took longer than ADMIT_AFTER_MS: the endpoint's own admit() still counts it against its `sub`,
   * or refuses it (then it is no longer admitted; its close listener finds nothing to forget).
   * Without this a slow token check let a sub past MAX_CONNECTIONS_PER_SUB.
   */
  private countLate(ws: WebSocket, sub: string | undefined): ErrorCode | null {
    const max = this.limits.maxPerSub;
    if (max === null || sub === undefined || sub === '' || this.admitted.get(ws) !== '') return null;
    const held = this.perSub.get(sub) ?? 0;
    if (held >= max) {
      this.admitted.delete(ws);
      return 'ERR_TOO_MANY_CONNECTIONS_PER_SUB';
    }
    this.perSub.set(sub, held + 1);
    this.admitted.set(ws, sub);
    return null;
  }

  /** Admitted sockets of `sub` right now. */
  countOf(sub: string): number {
    return this.perSub.get(sub) ?? 0;
  }

  /**
   * The socket's owner has its own 'close' listener and calls release() from it
   * (ws/shared-listeners.ts): admission takes its safety net's off and puts none on the socket
   * from now on, so the socket keeps one 'close' listener, held as a bare function (an array of
   * two costs 32 B more, of four 176 B). Call after the owner added its listener: removing an
   * event's last listener deletes the event from ws's listener table (ws/upgrade-hooks.ts).
   */
  adopt(ws: WebSocket): void {
    this.adopted.add(ws);
    ws.off('close', this.onWatchedClose);
  }

  /** An adopted socket closed: it no longer counts toward the cap, and its safety-net timer ends. */
  release(ws: WebSocket): void {
    this.open.delete(ws);
    this.adopted.delete(ws);
    this.forget(ws);
    this.unwatch(ws);
  }

  /** An admitted socket closed: it no longer counts toward the cap nor its sub's. */
  private forget(ws: WebSocket): void {
    const key = this.admitted.get(ws);
    if (key === undefined) return;
    this.admitted.delete(ws);
    if (key === '') return;
    const held = (this.perSub.get(key) ?? 1) - 1;
    if (held > 0) this.perSub.set(key, held);
    else this.perSub.delete(key);
  }

  /**
   * Safety net for WebSocket routes that do not call admit(): a socket still open (not closing)
   * once a refusal would have ended it was not refused, so it is admitted then (under no sub; an
   * endpoint whose token check ends later still counts it against its sub, countLate()).
   */
  watch(ws: WebSocket, req: IncomingMessage): void {
    this.open.add(ws);
    const timer = setTimeout(() => void this.admit(req, ws), ADMIT_AFTER_MS);
    timer.unref();
    this.watched.set(ws, timer);
    ws.on('close', this.onWatchedClose);
  }

  /**
   * Ends the safety net's wait: its timer holds the upgrade request and the socket, so a socket
   * admitted or closed lets them go at once (a burst of refused sockets must not stay in memory
   * for ADMIT_AFTER_MS; ws/upgrade-hooks.ts releaseUpgrade does the same for open ones).
   */
  private unwatch(ws: WebSocket): void {
    const timer = this.watched.get(ws);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.watched.delete(ws);
    ws.off('close', this.onWatchedClose);
  }

  /** the safety net's timer of each socket not yet admitted */
  private readonly watched = new WeakMap<WebSocket, NodeJS.Timeout>();

  /** sockets whose owner calls release() on close, until they are admitted or closed */
  private readonly adopted = new WeakSet<WebSocket>();

  /** the address each upgrade was counted against, until it is admitted */
  private readonly addresses = new WeakMap<IncomingMessage, string>();

  /** One listener for every watched socket (`this` is the socket): no closure per connection. */
  private readonly onWatchedClose = ((admission: Admission, open: Set<WebSocket>) =>
    function (this: WebSocket): void {
      open.delete(this);
      admission.unwatch(this);
    })(this, this.open);

  /** One listener for every admitted socket (`this` is the socket): no closure per connection. */
  private readonly onAdmittedClose = ((admission: Admission, open: Set<WebSocket>) =>
    function (this: WebSocket): void {
      open.delete(this);
      admission.forget(this);
    })(this, this.open);
}

/** Longer than a token check plus the close timeout after a refusal (app.ts). */
const ADMIT_AFTER_MS = 3000;

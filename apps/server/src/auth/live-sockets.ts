/**
 * Every open socket that a token admitted (/signal, /relay, and any endpoint that registers), by
 * token `sub`, `jti` and expiry: the one place that closes sockets whose token expired or was
 * revoked. Expiry needs no timer per socket: sockets sit in one bucket per deadline second and a
 * single 1 s sweep closes the buckets whose second has passed.
 */
import type { ErrorCode } from '@sync-suite/shared';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { itemsOf, withItem, withoutItem, type OneOrSet } from '../collections/one-or-set.js';

export type LiveEndpoint = 'signal' | 'relay' | 'sealed';

export interface LiveSocket {
  readonly sub: string;
  readonly jti?: string | undefined;
  /** the token's `exp`, unix seconds */
  readonly exp: number;
  readonly endpoint: LiveEndpoint;
  /**
   * closes the socket with the error's close code and message; called at most once (not `close`:
   * a connection can be its own entry and keep its own close(code, reason))
   */
  closeForToken(code: 'ERR_TOKEN_EXPIRED' | 'ERR_TOKEN_REVOKED' | ErrorCode): void;
}

export interface LiveSocketsOptions {
  graceSeconds: number;
  metrics: ServerMetrics;
  /** true when the socket's token is revoked now (checked on add, for a revocation made while it opened) */
  revoked?: (s: LiveSocket) => boolean;
  now?: () => number;
}

export class LiveSockets {
  // Each key holds its one socket itself, and a Set from the second on: most tokens (a jti, often
  // a sub) have one socket, and a Set of one costs about 150 B (docs/benchmarks.md, memory).
  private readonly bySub = new Map<string, Entry>();
  private readonly byJti = new Map<string, Entry>();
  /** deadline second (exp + grace, rounded up) -> sockets */
  private readonly buckets = new Map<number, Entry>();
  private readonly deadlines = new Map<LiveSocket, number>();
  private swept: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: LiveSocketsOptions) {
    this.now = opts.now ?? Date.now;
    this.swept = Math.floor(this.now() / 1000);
  }

  get size(): number {
    return this.deadlines.size;
  }

  /**
   * Registers the socket; call remove(s) when it closes. Returns nothing rather than an
   * unregister closure: one fewer object held per idle connection (docs/benchmarks.md, memory).
   */
  add(s: LiveSocket): void {
    if (this.opts.revoked?.(s)) {
      this.close(s, 'ERR_TOKEN_REVOKED', 'revoked');
      return;
    }
    if (!this.timer) this.swept = Math.floor(this.now() / 1000) - 1; // idle until now: nothing to catch up
    index(this.bySub, s.sub, s);
    if (s.jti !== undefined) index(this.byJti, s.jti, s);
    // Auth off (exp MAX_SAFE_INTEGER): claims never expire. An exp may have a fraction (RFC 7519
    // NumericDate), hence isFinite and not isSafeInteger. A deadline already swept goes into the next sweep.
    const deadline = Number.isFinite(s.exp) && s.exp < Number.MAX_SAFE_INTEGER ? Math.max(Math.ceil(s.exp + this.opts.graceSeconds), this.swept + 1) : Infinity;
    this.deadlines.set(s, deadline);
    if (deadline !== Infinity) {
      index(this.buckets, deadline, s);
      this.start();
    }
  }

  /** Closes every socket whose token has this `sub` or this `jti` with 4401; returns how many. */
  revoke(match: { sub?: string | undefined; jti?: string | undefined }): number {
    const hit = new Set<LiveSocket>();
    if (match.sub !== undefined) for (const s of sockets(this.bySub.get(match.sub))) hit.add(s);
    if (match.jti !== undefined) for (const s of sockets(this.byJti.get(match.jti))) hit.add(s);
    for (const s of hit) this.close(s, 'ERR_TOKEN_REVOKED', 'revoked');
    return hit.size;
  }

  /** Closes what has expired up to now; runs every second while any socket can expire. */
  sweep(): void {
    const nowSec = Math.floor(this.now() / 1000);
    // After a step of the wall clock (days, years) there are fewer buckets than seconds to walk.
    const seconds = nowSec - this.swept <= this.buckets.size ? range(this.swept + 1, nowSec) : [...this.buckets.keys()].filter((second) => second <= nowSec);
    for (const second of seconds) {
      const due = this.buckets.get(second);
      if (!due) continue;
      this.buckets.delete(second);
      for (const s of sockets(due)) this.close(s, 'ERR_TOKEN_EXPIRED', 'expired');
    }
    this.swept = Math.max(this.swept, nowSec);
    if (this.buckets.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private start(): void {
    if (this.timer) return;
    // A process that stalled longer than a second catches up: sweep() visits every missed second's bucket.
    this.timer = setInterval(() => this.sweep(), 1000);
    this.timer.unref();
  }

  private close(s: LiveSocket, code: 'ERR_TOKEN_EXPIRED' | 'ERR_TOKEN_REVOKED', reason: string): void {
    this.remove(s);
    this.opts.metrics.tokenClosures.inc({ endpoint: s.endpoint, reason });
    s.closeForToken(code);
  }

  /** Unregisters the socket; a socket not registered (or already closed by expiry or revocation) is ignored. */
  remove(s: LiveSocket): void {
    const deadline = this.deadlines.get(s);
    if (deadline === undefined) return;
    this.deadlines.delete(s);
    unindex(this.bySub, s.sub, s);
    if (s.jti !== undefined) unindex(this.byJti, s.jti, s);
    if (deadline !== Infinity) unindex(this.buckets, deadline, s);
  }
}

function* range(from: number, to: number): Iterable<number> {
  for (let n = from; n <= to; n++) yield n;
}

/** One socket, or a Set of two or more (collections/one-or-set.ts); a key without sockets is deleted. */
type Entry = LiveSocket | Set<LiveSocket>;

function sockets(entry: Entry | undefined): Iterable<LiveSocket> {
  return itemsOf<LiveSocket>(entry ?? null);
}

function index<K>(map: Map<K, Entry>, key: K, s: LiveSocket): void {
  const entry = map.get(key);
  const next = withItem<LiveSocket>(entry ?? null, s) as Entry;
  if (next !== entry) map.set(key, next);
}

function unindex<K>(map: Map<K, Entry>, key: K, s: LiveSocket): void {
  const entry = map.get(key);
  if (entry === undefined) return;
  const next: OneOrSet<LiveSocket> = withoutItem(entry, s);
  if (next === null) map.delete(key);
  else if (next !== entry) map.set(key, next);
}

/**
 * MAX_NEW_ROOMS_PER_SUB_PER_HOUR: how many rooms with nothing stored one token `sub` may open in
 * a sliding hour. Opening the same room again does not count twice.
 *
 * Without REDIS_URL the count is in-process (NewRoomLimiter; memory bounded by subs × limit
 * entries, pruned as they age out). With REDIS_URL it is kept in Redis (RedisNewRoomQuota), so
 * the quota holds across instances: one sorted set per sub, at most `limit` members.
 */
import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { RedisKeys } from '../fanout/redis-keys.js';
import type { RedisLink } from '../fanout/redis-link.js';

const HOUR_MS = 3_600_000;

/** What /relay and /sealed ask before opening a room with nothing stored. */
export interface NewRoomQuota {
  /** true when `sub` may open the new room `room` now (and it is counted) */
  take(sub: string, room: string): boolean | Promise<boolean>;
  stop(): void;
}

/**
 * A sub's one counted room and when it was counted. Most subs that open a new room in an hour
 * open one: a Map of one entry and its table cost about 200 B per sub, this object 40 B
 * (docs/benchmarks.md, memory). A sub's second room makes its Map.
 */
class OneRoom {
  constructor(
    readonly room: string,
    readonly at: number,
  ) {}
}

export class NewRoomLimiter implements NewRoomQuota {
  /** each sub's rooms counted in the last hour: the one room, or a Map room -> when from the second on */
  private readonly bySub = new Map<string, OneRoom | Map<string, number>>();
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly perHour: number,
    private readonly now: () => number = Date.now,
  ) {
    this.sweep = setInterval(() => this.pruneAll(), 60_000);
    this.sweep.unref();
  }

  take(sub: string, room: string): boolean {
    const rooms = this.prune(sub);
    if (rooms === undefined) {
      if (this.perHour <= 0) return false;
      this.bySub.set(sub, new OneRoom(room, this.now()));
      return true;
    }
    if (rooms instanceof OneRoom) {
      if (rooms.room === room) return true;
      if (this.perHour <= 1) return false;
      this.bySub.set(sub, new Map([[rooms.room, rooms.at], [room, this.now()]]));
      return true;
    }
    if (rooms.has(room)) return true;
    if (rooms.size >= this.perHour) return false;
    rooms.set(room, this.now());
    return true;
  }

  /** Subs with a room counted in the last hour (for tests). */
  get subCount(): number {
    return this.bySub.size;
  }

  stop(): void {
    clearInterval(this.sweep);
  }

  /** The sub's rooms counted within the hour, or undefined when none (and the sub is forgotten). */
  private prune(sub: string): OneRoom | Map<string, number> | undefined {
    const rooms = this.bySub.get(sub);
    if (!rooms) return undefined;
    const cutoff = this.now() - HOUR_MS;
    if (rooms instanceof OneRoom) {
      if (rooms.at > cutoff) return rooms;
    } else {
      for (const [room, at] of rooms) if (at <= cutoff) rooms.delete(room);
      if (rooms.size > 1) return rooms;
      // back to one room (or none): its Map goes
      const [only] = rooms;
      if (only) {
        const one = new OneRoom(only[0], only[1]);
        this.bySub.set(sub, one);
        return one;
      }
    }
    this.bySub.delete(sub);
    return undefined;
  }

  private pruneAll(): void {
    for (const sub of [...this.bySub.keys()]) this.prune(sub);
  }
}

/**
 * One atomic step per new room: drop the members older than the window, admit a room already
 * counted, refuse at the limit, else add the room and keep the key one window longer.
 * KEYS[1]: the sub's set; ARGV: now (ms), window (ms), limit, the room's member.
 */
const TAKE_SCRIPT = `
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZSCORE', key, ARGV[4]) then return 1 end
if redis.call('ZCARD', key) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, window)
return 1
`;

/** A Redis answer later than this falls back to the in-process count: opening a room never waits longer. */
const REDIS_TIMEOUT_MS = 1000;
/** at most one warning per period while Redis fails */
const WARN_EVERY_MS = 60_000;

export interface RedisNewRoomQuotaOptions {
  perHour: number;
  link: Promise<RedisLink>;
  keys: RedisKeys;
  log: FastifyBaseLogger;
  now?: () => number;
}

/**
 * The count in Redis. Sub and room are hashed (SHA-256, 16 bytes, base64url): a key and its
 * members have a fixed size whatever the token says. When Redis fails or is slow, the in-process
 * count decides (so one instance still holds the quota) and a warning is logged.
 */
export class RedisNewRoomQuota implements NewRoomQuota {
  private readonly local: NewRoomLimiter;
  private lastWarning = -Infinity;

  constructor(private readonly opts: RedisNewRoomQuotaOptions) {
    this.local = new NewRoomLimiter(opts.perHour, opts.now);
  }

  async take(sub: string, room: string): Promise<boolean> {
    const now = (this.opts.now ?? Date.now)();
    let timer: NodeJS.Timeout | undefined;
    try {
      const link = await this.opts.link;
      const answer = await Promise.race([
        link.runScript(TAKE_SCRIPT, [this.opts.keys.newRooms(digest(sub))], [now, HOUR_MS, this.opts.perHour, digest(room)]),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`redis did not answer within ${REDIS_TIMEOUT_MS} ms`)), REDIS_TIMEOUT_MS);
        }),
      ]);
      // Kept in step, so a Redis outage starts from what this instance admitted.
      if (answer === 1) this.local.take(sub, room);
      return answer === 1;
    } catch (err) {
      if (now - this.lastWarning >= WARN_EVERY_MS) {
        this.lastWarning = now;
        this.opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'new-room quota: redis failed; counting on this instance only');
      }
      return this.local.take(sub, room);
    } finally {
      clearTimeout(timer);
    }
  }

  stop(): void {
    this.local.stop();
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest().subarray(0, 16).toString('base64url');
}

/**
 * One instance's link to Redis: a publishing connection and a subscribing connection, shared by
 * signaling and relay. It routes each channel's messages to one handler, counts traffic and
 * errors, answers readiness, and tells its users when the subscriber came back after an outage
 * (messages published meanwhile are lost; users catch up from their own source of truth).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { INSTANCE_ID_BYTES } from './bus-frame.js';

/**
 * A failed resubscription is tried again after this, doubled per failure up to the maximum: Redis
 * refusing it (OOM, an ACL change) may last, and every room on this instance hears nothing meanwhile.
 */
const RESUBSCRIBE_RETRY_MS = 100;
const RESUBSCRIBE_RETRY_MAX_MS = 5_000;

export type ChannelHandler = (message: Buffer) => void;

export interface RedisLinkOptions {
  url: string;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
}

export class RedisLink {
  /** this process's id in every frame it publishes */
  readonly instance = randomBytes(INSTANCE_ID_BYTES);
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly handlers = new Map<string, ChannelHandler>();
  private readonly resyncListeners: Array<() => void> = [];
  private subReadyOnce = false;
  private pubReadyOnce = false;
  private closed = false;
  private lastError: Error | null = null;
  /** from a subscriber reconnect until its channels are subscribed again (readiness fails meanwhile) */
  private resubscribing = false;
  /** bumped by each subscriber reconnect and by close(): an older round's answer changes nothing */
  private resubscribeRound = 0;
  private resubscribeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: RedisLinkOptions) {
    // Publishing while disconnected fails at once (counted) rather than queueing without bound.
    this.pub = new Redis(opts.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
    // Subscriptions asked for during an outage wait for the reconnect. The rest are subscribed again
    // here (subReady), not by ioredis: its resubscription (5.9.2) is a promise nobody handles, so
    // a shutdown or a drop before Redis answers it was an unhandled rejection, fatal on Node.
    this.sub = new Redis(opts.url, { maxRetriesPerRequest: null, autoResubscribe: false, lazyConnect: true });
    for (const [name, conn] of [['pub', this.pub], ['sub', this.sub]] as const) {
      conn.on('error', (err: Error) => this.failed(name, err));
    }
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.received(channel, message));
    this.sub.on('ready', () => this.subReady());
    this.pub.on('ready', () => this.pubReady());
  }

  /** Connects both; resolves when they are ready (start-up fails if Redis is unreachable). */
  async connect(): Promise<void> {
    try {
      await Promise.all([this.pub.connect(), this.sub.connect()]);
    } catch (err) {
      // ioredis rejects with "Connection is closed."; the socket error before it names the cause.
      throw this.lastError ?? err;
    }
  }

  /** Routes the channel to `handler` and resolves once Redis has confirmed the subscription. */
  async subscribe(channel: string, handler: ChannelHandler): Promise<void> {
    this.handlers.set(channel, handler);
    await this.sub.subscribe(channel);
  }

  unsubscribe(channel: string): void {
    if (!this.handlers.delete(channel)) return;
    this.sub.unsubscribe(channel).catch((err: unknown) => this.failed('sub', err));
  }

  /**
   * false during an outage (a subscribe then waits for the reconnect) and until the channels are
   * subscribed again after it (messages for them are lost meanwhile)
   */
  get subscriberReady(): boolean {
    return this.sub.status === 'ready' && !this.resubscribing;
  }

  /** false during an outage: a publish then fails (and is dropped) */
  get publisherReady(): boolean {
    return this.pub.status === 'ready';
  }

  /** Fire and forget; a failure is counted and logged. Returns false if it could not be sent. */
  publish(channel: string, frame: Buffer): boolean {
    if (this.pub.status !== 'ready') {
      this.failed('pub', new Error(`redis not connected (${this.pub.status})`));
      return false;
    }
    this.opts.metrics.redisMessages.inc({ direction: 'publish' });
    this.pub.publish(channel, frame).catch((err: unknown) => this.failed('pub', err));
    return true;
  }

  /** Publishes and resolves with the number of subscribers (instances) that received it. */
  async publishCounted(channel: string, frame: Buffer): Promise<number> {
    this.opts.metrics.redisMessages.inc({ direction: 'publish' });
    return this.pub.publish(channel, frame);
  }

  /** SET key NX PX ttlMs: true when this call set it (nobody held it). */
  async setIfAbsent(key: string, ttlMs: number): Promise<boolean> {
    return (await this.pub.set(key, '1', 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** HSET key field value, then PEXPIRE key ttlMs, in one transaction. */
  async hashPut(key: string, field: string, value: string, ttlMs: number): Promise<void> {
    await this.pub.multi().hset(key, field, value).pexpire(key, ttlMs).exec();
  }

  /** Up to `limit` fields of a hash with their values (HRANDFIELD: bounded whatever the hash holds). */
  async hashSample(key: string, limit: number): Promise<Array<[string, string]>> {
    const flat = (await this.pub.hrandfield(key, limit, 'WITHVALUES')) as string[];
    const out: Array<[string, string]> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
    return out;
  }

  async hashDelete(key: string, fields: readonly string[]): Promise<void> {
    if (fields.length > 0) await this.pub.hdel(key, ...fields);
  }

  /**
   * Runs a Lua script on the publishing connection: EVALSHA, and EVAL (which loads it) the first
   * time Redis answers NOSCRIPT. Fails at once while disconnected, like publish.
   */
  async runScript(lua: string, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    const sha = createHash('sha1').update(lua).digest('hex');
    try {
      return await this.pub.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.pub.eval(lua, keys.length, ...keys, ...args);
    }
  }

  /**
   * Called after a connection came back: the subscriber (its channels subscribed again) or the
   * publisher (publishes failed meanwhile).
   */
  onResync(listener: () => void): void {
    this.resyncListeners.push(listener);
  }

  /** Readiness: both connections up and answering. */
  async check(): Promise<void> {
    if (this.pub.status !== 'ready' || this.sub.status !== 'ready') {
      throw new Error(`redis not connected (publisher ${this.pub.status}, subscriber ${this.sub.status})`);
    }
    if (this.resubscribing) throw new Error('redis channels not subscribed again yet after the reconnect');
    await this.pub.ping();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    this.stopResubscribing();
    await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
    this.pub.disconnect();
    this.sub.disconnect();
  }

  private received(channel: Buffer, message: Buffer): void {
    const handler = this.handlers.get(channel.toString());
    if (!handler) return;
    this.opts.metrics.redisMessages.inc({ direction: 'receive' });
    try {
      handler(message);
    } catch (err) {
      this.opts.log.error({ err, channel: channel.toString() }, 'redis message handling failed');
    }
  }

  private subReady(): void {
    if (!this.subReadyOnce) {
      this.subReadyOnce = true;
      return;
    }
    this.opts.log.warn('redis subscriber reconnected; catching up');
    // A drop during an earlier round (its wait or its command) ends that round: this one subscribes
    // everything, so only one loop ever retries.
    this.stopResubscribing();
    this.resubscribing = true;
    this.resubscribe(this.resubscribeRound, 1);
  }

  /**
   * ioredis has already sent what waited in its offline queue (subscribes made during the outage
   * agree with `handlers`); once these are answered too, every channel holds. A failure is retried
   * on this connection: nothing else would subscribe the channels before the next reconnect.
   */
  private resubscribe(round: number, attempt: number): void {
    this.resubscribeTimer = null;
    // Dropped during the wait: the reconnect's subReady starts a new round.
    if (round !== this.resubscribeRound || this.sub.status !== 'ready') return;
    const channels = [...this.handlers.keys()];
    (channels.length > 0 ? this.sub.subscribe(...channels) : this.sub.ping())
      .then(
        () => this.resubscribed(round, attempt),
        (err: unknown) => this.resubscribeFailed(round, attempt, err),
      )
      .catch((err: unknown) => this.failed('sub', err)); // a resync listener threw
  }

  private resubscribed(round: number, attempt: number): void {
    if (round !== this.resubscribeRound) return;
    this.resubscribing = false;
    if (attempt > 1) this.opts.log.info({ attempts: attempt }, 'redis channels subscribed again');
    for (const listener of this.resyncListeners) listener();
  }

  private resubscribeFailed(round: number, attempt: number, err: unknown): void {
    // A command of an older round (ioredis resends those after a drop) fails without retrying.
    if (round !== this.resubscribeRound) return void this.failed('sub', err);
    const retryInMs = Math.min(RESUBSCRIBE_RETRY_MAX_MS, RESUBSCRIBE_RETRY_MS * 2 ** Math.min(30, attempt - 1));
    this.failed('sub', err, { resubscribeAttempt: attempt, retryInMs });
    this.resubscribeTimer = setTimeout(() => this.resubscribe(round, attempt + 1), retryInMs);
    this.resubscribeTimer.unref();
  }

  private stopResubscribing(): void {
    this.resubscribeRound++;
    if (this.resubscribeTimer) clearTimeout(this.resubscribeTimer);
    this.resubscribeTimer = null;
  }

  private pubReady(): void {
    if (!this.pubReadyOnce) {
      this.pubReadyOnce = true;
      return;
    }
    for (const listener of this.resyncListeners) listener();
  }

  private failed(conn: 'pub' | 'sub', err: unknown, fields: Record<string, number> = {}): void {
    if (this.closed) return;
    if (err instanceof Error) this.lastError = err;
    this.opts.metrics.redisErrors.inc();
    this.opts.log.warn({ err, conn, ...fields }, 'redis error');
  }
}

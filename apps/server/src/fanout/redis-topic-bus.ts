/**
 * TopicBus across instances. Membership stays local (a LocalTopicBus); each topic with local
 * members has a Redis channel that carries its publishes (the encoded frame, delivered as is)
 * and each instance's subscriber count. `clients` and the MAX_PEERS_PER_ROOM check use the local
 * count plus the counts the other instances announced, which are refreshed periodically and
 * expire, so an instance that died stops counting after COUNT_TTL.
 */
import type { PublishFields } from '@sync-suite/shared';
import type { FastifyBaseLogger } from 'fastify';
import { LocalTopicBus } from '../signaling/local-topic-bus.js';
import { framePayload, publishFrame, textFrame } from '../signaling/publish-frame.js';
import type { JoinResult, TopicBus, TopicMember } from '../signaling/topic-bus.js';
import { BusKind, readBusFrame, readCount, writeBusFrame, writeCount, type BusFrame } from './bus-frame.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';
import { RemoteCounts } from './remote-counts.js';

/**
 * What the held publishes (below) may add up to, over all topics. A SUBSCRIBE waits for Redis
 * for as long as an outage lasts, and the topic's members keep publishing meanwhile: past this,
 * a publish goes to the local members only, as every publish does while Redis is down
 * (redis-link.ts drops what it cannot send).
 */
export const HELD_PUBLISH_BYTES = 4 * 1024 * 1024;

/**
 * How long a topic keeps its Redis subscription after its last local member left. A member that
 * unsubscribes and subscribes again (a y-webrtc room closed and reopened, or a client churning
 * on purpose) then costs no SUBSCRIBE, hello, answers from every other instance and UNSUBSCRIBE:
 * only its count changes (reviewer's probe: about 189 Redis commands per churned frame before).
 * As ROOM_IDLE_MS's default for relay rooms (packages/shared/src/config/server-config.ts).
 */
export const TOPIC_LINGER_MS = 5000;

export interface RedisTopicBusOptions {
  link: RedisLink;
  keys: RedisKeys;
  log: FastifyBaseLogger;
  maxMembersPerTopic: number;
  onTopicCount?: (count: number) => void;
  /** how often counts are re-announced; they expire after three periods */
  refreshMs?: number;
  /** TOPIC_LINGER_MS unless given (tests) */
  lingerMs?: number;
}

export class RedisTopicBus implements TopicBus {
  private readonly local: LocalTopicBus;
  private readonly remote: RemoteCounts;
  private readonly topics = new Set<string>();
  /**
   * Publishes of topics whose SUBSCRIBE is still in flight. Held back so that no reply from
   * another instance (an answer to our announce) can come before we can hear it: y-webrtc
   * does not re-announce, so a reply lost that way would leave the peers apart.
   */
  private readonly held = new Map<string, Buffer[]>();
  private heldBytes = 0;
  /**
   * Held topics whose SUBSCRIBE is done while the publishing connection is not back yet (the two
   * reconnect independently after an outage): released when it is (the link's resync).
   */
  private readonly subscribed = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  /** topics with no local member that keep their subscription until their timer ends (TOPIC_LINGER_MS) */
  private readonly lingering = new Map<string, NodeJS.Timeout>();
  /**
   * Topics whose count changed (or was asked for) this turn: announced once at the end of the
   * turn, and only if it differs from the last one announced (`announced`) unless asked for, so
   * a subscribe and unsubscribe in one turn announce nothing.
   */
  private readonly dirty = new Map<string, boolean>();
  private flushScheduled = false;
  /** the count last announced per subscribed topic */
  private readonly announced = new Map<string, number>();

  constructor(private readonly opts: RedisTopicBusOptions) {
    const refreshMs = opts.refreshMs ?? 10_000;
    this.remote = new RemoteCounts(3 * refreshMs);
    this.local = new LocalTopicBus({
      maxMembersPerTopic: opts.maxMembersPerTopic,
      onTopicCount: opts.onTopicCount,
    });
    this.timer = setInterval(() => this.announceAll(), refreshMs);
    this.timer.unref();
    // Counts sent during an outage were lost: announce again and ask the others for theirs.
    opts.link.onResync(() => {
      for (const topic of this.subscribed) this.release(topic);
      for (const topic of this.topics) this.send(topic, BusKind.SignalHello);
      for (const topic of this.topics) this.announce(topic); // a lingering topic's 0 may have been lost too
    });
  }

  get topicCount(): number {
    return this.local.topicCount;
  }

  size(topic: string): number {
    return this.local.size(topic) + this.remote.total(topic);
  }

  join(topic: string, member: TopicMember): JoinResult {
    const result = this.local.join(topic, member);
    if (result !== 'joined') return result;
    if (this.size(topic) > this.opts.maxMembersPerTopic) {
      this.local.leave(topic, member);
      return 'full';
    }
    const lingering = this.lingering.get(topic);
    if (lingering !== undefined) {
      clearTimeout(lingering);
      this.lingering.delete(topic);
    }
    if (!this.topics.has(topic)) this.open(topic);
    this.countChanged(topic);
    return 'joined';
  }

  leave(topic: string, member: TopicMember): void {
    const before = this.local.size(topic);
    this.local.leave(topic, member);
    if (this.local.size(topic) === before) return;
    this.countChanged(topic);
    if (this.local.size(topic) === 0 && !this.lingering.has(topic)) {
      const timer = setTimeout(() => {
        this.lingering.delete(topic);
        if (this.local.size(topic) === 0) this.shut(topic);
      }, this.opts.lingerMs ?? TOPIC_LINGER_MS);
      timer.unref();
      this.lingering.set(topic, timer);
    }
  }

  publish(topic: string, fields: PublishFields, received: Buffer): number {
    const frame = publishFrame(fields, received, this.size(topic)); // throws RangeError before anything is sent
    // Always to Redis (the JSON text, unframed): a peer that just joined elsewhere may not have been announced yet.
    const busFrame = writeBusFrame(BusKind.SignalPublish, this.opts.link.instance, framePayload(frame));
    const held = this.held.get(topic);
    if (!held) this.opts.link.publish(this.opts.keys.signalTopic(topic), busFrame);
    else if (this.heldBytes + busFrame.length <= HELD_PUBLISH_BYTES) {
      held.push(busFrame);
      this.heldBytes += busFrame.length;
    }
    return this.local.deliver(topic, frame);
  }

  close(): void {
    clearInterval(this.timer);
    for (const timer of this.lingering.values()) clearTimeout(timer);
    this.lingering.clear();
  }

  private open(topic: string): void {
    this.topics.add(topic);
    // A leave and re-join within one subscribe round trip keeps the frames already held.
    if (!this.held.has(topic)) this.held.set(topic, []);
    this.subscribed.delete(topic); // they wait for this SUBSCRIBE now
    const channel = this.opts.keys.signalTopic(topic);
    this.opts.link
      .subscribe(channel, (message) => this.received(topic, message))
      .then(() => {
        this.release(topic);
        // Subscribed: ask who else holds the topic, and tell them about us.
        if (!this.topics.has(topic)) return;
        this.send(topic, BusKind.SignalHello);
        this.announce(topic);
      })
      .catch((err: unknown) => {
        this.release(topic); // better late and possibly unanswered than never sent
        this.opts.log.warn({ err, topic }, 'signaling topic subscribe failed');
      });
  }

  /** The topic's SUBSCRIBE is done: its held publishes go out once the publisher is ready too. */
  private release(topic: string): void {
    const held = this.held.get(topic);
    if (held && held.length > 0 && !this.opts.link.publisherReady) return void this.subscribed.add(topic);
    this.held.delete(topic);
    this.subscribed.delete(topic);
    for (const busFrame of held ?? []) {
      this.heldBytes -= busFrame.length;
      this.opts.link.publish(this.opts.keys.signalTopic(topic), busFrame);
    }
  }

  private shut(topic: string): void {
    if (this.dirty.has(topic)) this.flushCount(topic);
    this.announced.delete(topic);
    this.topics.delete(topic);
    this.remote.forget(topic);
    this.opts.link.unsubscribe(this.opts.keys.signalTopic(topic));
  }

  private received(topic: string, message: Buffer): void {
    const read = readBusFrame(message);
    if (!read.ok) return this.opts.log.warn({ reason: read.reason, topic }, 'malformed signaling bus frame dropped');
    const { frame } = read;
    if (frame.instance.equals(this.opts.link.instance)) return; // our own publish: delivered already
    switch (frame.kind) {
      case BusKind.SignalPublish:
        if (this.local.size(topic) > 0) this.local.deliver(topic, textFrame(frame.payload));
        return;
      case BusKind.SignalCount:
        return this.countReceived(topic, frame);
      case BusKind.SignalHello:
        this.remote.total(topic); // purge expired entries
        // Answered once per turn however many hellos came (every instance holding the topic answers).
        this.countChanged(topic, true);
        return;
      default:
        return;
    }
  }

  private countReceived(topic: string, frame: BusFrame): void {
    const count = readCount(frame.payload);
    if (count !== null) this.remote.set(topic, frame.instance.toString('hex'), count);
  }

  private announce(topic: string): void {
    const count = this.local.size(topic);
    this.dirty.delete(topic);
    this.announced.set(topic, count);
    this.send(topic, BusKind.SignalCount, writeCount(count));
  }

  /** The topic's count is announced at the end of the turn (`always`: even if unchanged, e.g. asked by a hello). */
  private countChanged(topic: string, always = false): void {
    this.dirty.set(topic, always || this.dirty.get(topic) === true);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const t of [...this.dirty.keys()]) this.flushCount(t);
    });
  }

  private flushCount(topic: string): void {
    const always = this.dirty.get(topic);
    this.dirty.delete(topic);
    if (always === undefined || !this.topics.has(topic)) return;
    if (always || this.announced.get(topic) !== this.local.size(topic)) this.announce(topic);
  }

  /** The periodic refresh (counts expire after three periods); a lingering topic's 0 was announced already. */
  private announceAll(): void {
    for (const topic of this.topics) if (!this.lingering.has(topic)) this.announce(topic);
  }

  private send(topic: string, kind: BusKind, payload?: Uint8Array): void {
    this.opts.link.publish(this.opts.keys.signalTopic(topic), writeBusFrame(kind, this.opts.link.instance, payload));
  }
}

/**
 * The in-process TopicBus: a map from topic to its members. Each publish is framed
 * once and the same Buffer is handed to every member.
 */
import type { PublishFields } from '@sync-suite/shared';
import { publishFrame } from './publish-frame.js';
import type { JoinResult, TopicBus, TopicMember } from './topic-bus.js';

export interface LocalTopicBusOptions {
  /** MAX_PEERS_PER_ROOM */
  maxMembersPerTopic: number;
  /** called with the topic count whenever it changes (drives sync_signaling_topics) */
  onTopicCount?: (count: number) => void;
  /** the encoder (publishFrame); injectable so that a test can count encodes */
  encode?: (fields: PublishFields, received: Buffer, clients: number) => Buffer;
}

export class LocalTopicBus implements TopicBus {
  private readonly topics = new Map<string, Set<TopicMember>>();
  private readonly encode: (fields: PublishFields, received: Buffer, clients: number) => Buffer;

  constructor(private readonly opts: LocalTopicBusOptions) {
    this.encode = opts.encode ?? publishFrame;
  }

  get topicCount(): number {
    return this.topics.size;
  }

  size(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  join(topic: string, member: TopicMember): JoinResult {
    let members = this.topics.get(topic);
    if (members?.has(member)) return 'already';
    if (members && members.size >= this.opts.maxMembersPerTopic) return 'full';
    if (!members) {
      members = new Set();
      this.topics.set(topic, members);
      this.opts.onTopicCount?.(this.topics.size);
    }
    members.add(member);
    return 'joined';
  }

  leave(topic: string, member: TopicMember): void {
    const members = this.topics.get(topic);
    if (!members?.delete(member)) return;
    if (members.size === 0) {
      this.topics.delete(topic);
      this.opts.onTopicCount?.(this.topics.size);
    }
  }

  publish(topic: string, fields: PublishFields, received: Buffer): number {
    const members = this.topics.get(topic);
    if (!members) return 0;
    return this.deliver(topic, this.encode(fields, received, members.size));
  }

  /** Hands an already-framed publish to every member (also used for publishes from other instances). */
  deliver(topic: string, frame: Buffer): number {
    const members = this.topics.get(topic);
    if (!members) return 0;
    const count = members.size;
    // Deleting from a Set while iterating it is safe, should a delivery drop a member.
    for (const member of members) member.deliver(frame);
    return count;
  }
}

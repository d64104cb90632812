/**
 * Topic membership and publish delivery, behind one narrow interface so that a
 * multi-instance implementation (Redis fan-out, `clients` counted across instances)
 * can replace the in-process one without touching connection handling.
 */
import type { PublishFields } from '@sync-suite/shared';

/** One subscriber: a signaling connection, or a test double. */
export interface TopicMember {
  readonly id: string;
  /**
   * Put a publish on the wire: `frame` is a whole WebSocket text frame (signaling/publish-frame.ts),
   * the same Buffer for every receiver.
   */
  deliver(frame: Buffer): void;
}

export type JoinResult = 'joined' | 'already' | 'full';

export interface TopicBus {
  /** Add the member to the topic unless the topic is full. */
  join(topic: string, member: TopicMember): JoinResult;
  /** Remove the member; an empty topic is forgotten. */
  leave(topic: string, member: TopicMember): void;
  /**
   * Send the publish, with `clients` set to the subscriber count, to every subscriber
   * (the sender included, if subscribed): `fields` as decoded, `received` the bytes they were
   * decoded from. Returns how many local members received it.
   * Throws RangeError if the message cannot be serialized.
   */
  publish(topic: string, fields: PublishFields, received: Buffer): number;
  /** Subscribers of the topic (for tests and capacity checks). */
  size(topic: string): number;
  /** Topics with at least one subscriber. */
  readonly topicCount: number;
}

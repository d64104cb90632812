/**
 * One function per signaling message type: decode has happened, the connection is
 * authenticated; each returns a Refusal when the socket must be closed.
 */
import { messagePong, parseRoomName, type PublishFields, type RoomTokenClaims, type SignalingMessage } from '@sync-suite/shared';
import type { SignalingDeps } from './deps.js';
import { refusal, type Refusal } from './refusal.js';
import type { TopicMember } from './topic-bus.js';

export interface HandlerConnection extends TopicMember {
  readonly claims: RoomTokenClaims;
  /** whether this connection is subscribed to the topic (the other side of the bus's membership) */
  hasTopic(topic: string): boolean;
  /** how many topics it is subscribed to */
  readonly topicCount: number;
  /** takes `n` topic joins from the connection's budget (SIGNALING_TOPIC_JOINS_PER_MINUTE); false when it has not that many */
  takeTopicJoins(n: number): boolean;
  addTopic(topic: string): void;
  /** false when the connection did not hold the topic */
  deleteTopic(topic: string): boolean;
  sendText(text: string): void;
}

/** `received`: the bytes `msg` was decoded from (a publish forwards them; signaling/publish-frame.ts). */
export function handleMessage(deps: SignalingDeps, conn: HandlerConnection, msg: SignalingMessage, received: Buffer): Refusal | undefined {
  switch (msg.type) {
    case 'subscribe':
      return subscribe(deps, conn, msg.topics);
    case 'unsubscribe':
      return unsubscribe(deps, conn, msg.topics);
    case 'publish':
      return publish(deps, conn, msg.topic, msg.fields, received);
    case 'ping':
      conn.sendText(messagePong);
      return undefined;
  }
}

/** A topic must be a room name (4400) that the token covers (4403). */
function checkTopic(deps: SignalingDeps, claims: RoomTokenClaims, topic: string): Refusal | undefined {
  const parsed = parseRoomName(topic, deps.roomPolicy);
  if (!parsed.ok) return refusal('ERR_ROOM_NAME', 'room_name', parsed.reason);
  if (!deps.auth.covers(claims, topic, 'signal')) return refusal('ERR_FORBIDDEN_ROOM', 'forbidden');
  return undefined;
}

/** Validates every topic before joining any, so a refused subscribe joins nothing it should not. */
function subscribe(deps: SignalingDeps, conn: HandlerConnection, topics: string[]): Refusal | undefined {
  const fresh = new Set(topics.filter((t) => !conn.hasTopic(t)));
  if (conn.topicCount + fresh.size > deps.limits.maxTopics) {
    return refusal('ERR_TOO_MANY_TOPICS', 'too_many_topics', `${conn.topicCount + fresh.size} topics`);
  }
  for (const topic of fresh) {
    const refused = checkTopic(deps, conn.claims, topic);
    if (refused) return refused;
  }
  // Each join of a topic new to the instance costs Redis commands on every instance holding it
  // (fanout/redis-topic-bus.ts): subscribe/unsubscribe churn must not be free.
  if (fresh.size > 0 && !conn.takeTopicJoins(fresh.size)) return refusal('ERR_TOO_MANY_TOPIC_JOINS', 'topic_joins', `${fresh.size} topics`);
  for (const topic of fresh) {
    if (deps.bus.join(topic, conn) === 'full') return refusal('ERR_ROOM_FULL', 'room_full');
    conn.addTopic(topic);
  }
  return undefined;
}

/** Topics the connection does not hold are ignored, as the stock server does. */
function unsubscribe(deps: SignalingDeps, conn: HandlerConnection, topics: string[]): undefined {
  for (const topic of topics) {
    if (conn.deleteTopic(topic)) deps.bus.leave(topic, conn);
  }
  return undefined;
}

/**
 * Like the stock server, a connection may publish to a topic it has not subscribed to
 * (y-webrtc encrypts asynchronously, so a publish can trail its unsubscribe); the topic
 * must still be a room the token covers.
 */
function publish(deps: SignalingDeps, conn: HandlerConnection, topic: string, fields: PublishFields, received: Buffer): Refusal | undefined {
  if (!conn.hasTopic(topic)) {
    const refused = checkTopic(deps, conn.claims, topic);
    if (refused) return refused;
  }
  // A y-webrtc peer applies every sync message a connected peer sends, so a read member that could
  // signal (announce, offer, answer) could change the document peer to peer: its publishes are
  // dropped and counted, as the relay drops its updates (docs/PROTOCOL-signaling.md).
  if (conn.claims.scope === 'read') {
    deps.metrics.rejectedMessages.inc({ endpoint: 'signal', reason: 'read_only' });
    return undefined;
  }
  try {
    deps.bus.publish(topic, fields, received);
  } catch (err) {
    // JSON nested beyond what can be re-serialized: a malformed message, not a server fault.
    if (err instanceof RangeError) return refusal('ERR_PROTOCOL', 'unserializable');
    throw err;
  }
  return undefined;
}

/** What every signaling connection shares: the topic bus, auth, limits and metrics. */
import type { FastifyBaseLogger } from 'fastify';
import type { RoomNamePolicy } from '@sync-suite/shared';
import type { ServerMetrics } from '@sync-suite/shared/node';
import type { Authenticator } from '../auth/authenticate.js';
import type { AbuseThreshold } from '../limits/rate-limiter.js';
import type { LiveSockets } from '../auth/live-sockets.js';
import type { Keepalive } from '../ws/keepalive.js';
import type { Admission } from '../ws/admission.js';
import type { TurnFlush } from '../ws/turn-output.js';
import type { UnsentBudget } from '../ws/unsent-budget.js';
import type { TopicJoinBudgets } from '../limits/topic-join-budgets.js';
import type { MessageCounts } from './message-counts.js';
import type { TopicBus } from './topic-bus.js';

export interface SignalingLimits {
  /** SIGNALING_MAX_MESSAGE_BYTES: larger frames close 1009 */
  maxMessageBytes: number;
  /** MAX_TOPICS_PER_CONNECTION */
  maxTopics: number;
  /**
   * SIGNALING_TOPIC_JOINS_PER_MINUTE: each topic a connection subscribes to takes one, refilled
   * over a minute; the burst is at least maxTopics, so a client may join all its topics at once
   */
  topicJoins: { intervalMs: number; burst: number };
  /** MAX_MESSAGES_PER_SECOND: above it reading pauses */
  messagesPerSecond: number;
  /** RATE_LIMIT_ABUSE_FACTOR / _SECONDS: far above the rate, the socket closes 4429 */
  abuse: AbuseThreshold;
  /** a receiver with more unsent bytes than this is too slow and is dropped */
  maxBufferedBytes: number;
}

export interface SignalingDeps {
  bus: TopicBus;
  auth: Authenticator;
  roomPolicy: RoomNamePolicy;
  metrics: ServerMetrics;
  /** sync_signaling_messages_total, counted without a label lookup per message */
  messageCounts: MessageCounts;
  limits: SignalingLimits;
  /** SIGNALING_TOPIC_JOINS_PER_MINUTE per token sub, with auth on */
  topicJoinBudgets: TopicJoinBudgets;
  /** WebSocket pings every SIGNALING_PING_INTERVAL_MS; any frame received also counts as alive */
  keepalive: Keepalive;
  /** the instance's admission: the socket's close releases it there */
  admission: Admission;
  /** where authenticated sockets register, to be closed on token expiry or revocation */
  live: LiveSockets;
  /** the server's logger, parent of each connection's ConnLog */
  log: FastifyBaseLogger;
  /** runs each receiver's one write of a turn's frames at the end of the turn (ws/turn-output.ts) */
  turns: TurnFlush;
  /** MAX_UNSENT_BYTES_TOTAL, shared with /relay and /sealed (ws/unsent-budget.ts) */
  unsent: UnsentBudget;
}

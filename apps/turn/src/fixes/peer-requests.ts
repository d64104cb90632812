/**
 * Peer filtering for CreatePermission, ChannelBind and Send (node-turn's 403 check is a
 * TODO; an IPv6 peer on an IPv4 relay gets 443, RFC 6156), plus counting what Send relays. ChannelBind replies are signed by signReply, which
 * fixes node-turn's missing MESSAGE-INTEGRITY on ChannelBind success.
 */
import type { MethodListener, NtAddress, NtAllocation, NtMessage } from '../node-turn.js';
import type { TurnContext } from '../context.js';
import { signReply, wrapListeners } from './wrap.js';

export function guardPeerRequests(ctx: TurnContext): void {
  const { server } = ctx;
  wrapListeners<MethodListener>(server, 'create_permission', (original) => (msg, reply) => {
    signReply(reply);
    const denied = (msg.getAttributes('xor-peer-address') as NtAddress[]).find((p) => p && ctx.peers.denies(p.address));
    if (denied) return refuse(ctx, msg, reply, denied, 'CreatePermission');
    if ((msg.getAttributes('xor-peer-address') as NtAddress[]).some((p) => p && p.family !== ctx.relayFamily)) {
      return reply.reject(443, 'Peer Address Family Mismatch');
    }
    original(msg, reply);
  });
  wrapListeners<MethodListener>(server, 'channel_bind', (original) => (msg, reply) => {
    signReply(reply);
    const peer = msg.getAttribute('xor-peer-address') as NtAddress | undefined;
    if (peer && ctx.peers.denies(peer.address)) return refuse(ctx, msg, reply, peer, 'ChannelBind');
    if (peer && peer.family !== ctx.relayFamily) return reply.reject(443, 'Peer Address Family Mismatch');
    original(msg, reply);
  });
  wrapListeners<MethodListener>(server, 'send', (original) => (msg, reply) => {
    const peer = msg.getAttribute('xor-peer-address') as NtAddress | undefined;
    const data = msg.getAttribute('data') as Buffer | undefined;
    if (!peer || !data || !msg.allocation) return;
    if (ctx.peers.denies(peer.address)) {
      // an indication cannot be answered: drop and count
      ctx.metrics.deniedPeers.inc();
      ctx.log.debug({ username: msg.allocation.user.username, peer: `${peer.address}:${peer.port}` }, 'send to denied peer dropped');
      return;
    }
    if (!permitted(msg.allocation, peer.address)) return;
    original(msg, reply);
    ctx.metrics.relayed('to_peer', data.length);
  });
}

export function permitted(allocation: NtAllocation, address: string): boolean {
  return (allocation.permissions[address] ?? 0) > Date.now();
}

function refuse(ctx: TurnContext, msg: NtMessage, reply: NtMessage, peer: NtAddress, request: string): void {
  ctx.metrics.deniedPeers.inc();
  ctx.log.warn({ username: msg.user?.username, peer: `${peer.address}:${peer.port}`, request }, 'peer denied');
  reply.reject(403, 'Forbidden');
}

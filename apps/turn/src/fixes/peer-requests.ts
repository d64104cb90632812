/**
 * Peer filtering for CreatePermission and ChannelBind (node-turn's 403 check is a TODO; an
 * IPv6 peer on an IPv4 relay gets 443, RFC 6156); Send indications are checked by the data
 * plane. ChannelBind replies are signed by signReply, which fixes node-turn's missing
 * MESSAGE-INTEGRITY on ChannelBind success.
 */
import type { MethodListener, NtAddress, NtMessage } from '../node-turn.js';
import type { TurnContext } from '../context.js';
import { loggedUsername } from '../log-budget.js';
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
    if (peer && ctx.peers.deniesPort(peer.address, peer.port)) return refuse(ctx, msg, reply, peer, 'ChannelBind');
    if (peer && peer.family !== ctx.relayFamily) return reply.reject(443, 'Peer Address Family Mismatch');
    original(msg, reply);
  });
}

function refuse(ctx: TurnContext, msg: NtMessage, reply: NtMessage, peer: NtAddress, request: string): void {
  ctx.metrics.deniedPeers.inc();
  // an authenticated client can ask for denied peers as fast as it can send: within the log budget
  ctx.logBudget.warn('peer denied', { username: loggedUsername(msg.user?.username), peer: `${peer.address}:${peer.port}`, request });
  reply.reject(403, 'Forbidden');
}

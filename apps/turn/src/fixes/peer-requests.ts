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
    const peers = msg.getAttributes('xor-peer-address') as NtAddress[];
    // before any per-peer work: one datagram carries thousands of addresses
    if (peers.length > ctx.limits.peersPerRequest) return atCapacity(ctx, msg, reply, 'peers_per_request');
    const denied = peers.find((p) => p && ctx.peers.denies(p.address));
    if (denied) return refuse(ctx, msg, reply, denied, 'CreatePermission');
    if (peers.some((p) => p && p.family !== ctx.relayFamily)) {
      return reply.reject(443, 'Peer Address Family Mismatch');
    }
    // all or none (RFC 8656 section 9.2): refused whole when the new ones do not fit
    const relay = msg.allocation ? ctx.registry.relayOf(msg.allocation) : undefined;
    const addresses = peers.filter((p) => p?.address).map((p) => p.address);
    if (relay && !relay.roomForPermissions(addresses, ctx.limits.permissions, Date.now())) return atCapacity(ctx, msg, reply, 'permissions');
    // the native path's channel list pushed once for the request, not once per peer
    if (relay) relay.batch(() => original(msg, reply));
    else original(msg, reply);
  });
  wrapListeners<MethodListener>(server, 'channel_bind', (original) => (msg, reply) => {
    signReply(reply);
    const peer = msg.getAttribute('xor-peer-address') as NtAddress | undefined;
    if (peer && ctx.peers.deniesPort(peer.address, peer.port)) return refuse(ctx, msg, reply, peer, 'ChannelBind');
    if (peer && peer.family !== ctx.relayFamily) return reply.reject(443, 'Peer Address Family Mismatch');
    original(msg, reply);
  });
}

/** 508 Insufficient Capacity (RFC 8656): a TURN_MAX_* limit; counted, logged at debug (the metric is the signal). */
export function atCapacity(ctx: TurnContext, msg: NtMessage, reply: NtMessage, limit: 'peers_per_request' | 'permissions' | 'channels' | 'reservations'): void {
  ctx.metrics.capacityRejections.inc({ limit });
  ctx.log.debug({ username: loggedUsername(msg.user?.username), limit }, 'request over a limit');
  reply.reject(508, 'Insufficient Capacity');
}

function refuse(ctx: TurnContext, msg: NtMessage, reply: NtMessage, peer: NtAddress, request: string): void {
  ctx.metrics.deniedPeers.inc();
  // an authenticated client can ask for denied peers as fast as it can send: within the log budget
  ctx.logBudget.warn('peer denied', { username: loggedUsername(msg.user?.username), peer: `${peer.address}:${peer.port}`, request });
  reply.reject(403, 'Forbidden');
}

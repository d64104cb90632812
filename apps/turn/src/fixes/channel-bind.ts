/**
 * ChannelBind, replacing node-turn's handler. Fix: it refuses channel 0x7FFF with 400, while
 * coturn and libwebrtc's TURN server take 0x4000-0x7FFF and coturn's own client
 * (turnutils_uclient) draws its channel numbers from that range: about one uclient client in
 * 8,000 failed its ChannelBind here and not on coturn (the likely end of a saturation ramp in
 * docs/benchmarks.md). The other rules are RFC 8656 section 12's, per allocation: the same channel
 * to the same peer refreshes the binding; a channel bound to another peer, or a peer bound to
 * another channel, is a 400. Bindings are read through allocations.ts's mirror, so an expired one
 * counts as unbound; success goes through allocation.permit() and channelBindings as before, which
 * install the permission and the binding in the data plane.
 */
import type { MethodListener, NtAddress } from '../node-turn.js';
import type { TurnContext } from '../context.js';
import { atCapacity } from './peer-requests.js';

/** the range coturn accepts (RFC 5766 reserved 0x7FFF; RFC 8656 narrows clients to 0x4000-0x4FFF) */
export const MIN_CHANNEL = 0x4000;
export const MAX_CHANNEL = 0x7fff;

export function fixChannelBind(ctx: TurnContext): void {
  const { server } = ctx;
  server.removeAllListeners('channel_bind');
  const onChannelBind: MethodListener = (msg, reply) => {
    const allocation = msg.allocation;
    if (!allocation) return reply.reject(437, 'Allocation Mismatch');
    const channel = msg.getAttribute('channel-number') as number | undefined;
    const peer = msg.getAttribute('xor-peer-address') as NtAddress | undefined;
    if (typeof channel !== 'number' || !peer) return reply.reject(400, 'Bad Request');
    if (channel < MIN_CHANNEL || channel > MAX_CHANNEL) return reply.reject(400, 'Bad Request');
    const relay = ctx.registry.relayOf(allocation);
    if (!relay) return reply.reject(437, 'Allocation Mismatch');
    const now = Date.now();
    const bound = allocation.channelBindings[channel];
    if (bound && bound.toString() !== peer.toString()) return reply.reject(400, 'Bad Request');
    // the peer map, not node-turn's getPeerChannelNumber (a scan of every binding per request)
    const peerChannel = relay.channelOfPeer(peer.address, peer.port, now);
    if (peerChannel !== undefined && peerChannel !== channel) return reply.reject(400, 'Bad Request');
    if (!relay.roomForChannel(channel, ctx.limits.channels, now)) return atCapacity(ctx, msg, reply, 'channels');
    if (!relay.roomForPermissions([peer.address], ctx.limits.permissions, now)) return atCapacity(ctx, msg, reply, 'permissions');
    // binding installs or refreshes the permission too (relay-allocation.ts); one push to the native path
    relay.batch(() => {
      allocation.channelBindings[channel] = peer;
    });
    reply.resolve();
  };
  server.on('channel_bind', onChannelBind);
}

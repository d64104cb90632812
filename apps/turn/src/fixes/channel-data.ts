/**
 * Fix: node-turn's listener parses every datagram as STUN and drops ChannelData (first bits
 * 01), so clients that bound a channel could no longer send. We relay it to the bound peer.
 */
import type { Socket } from 'node:dgram';
import { Address, Transport, UDP_PROTOCOL, type NtAddress } from '../node-turn.js';
import { readChannelData } from '../stun/codec.js';
import type { TurnContext } from '../context.js';
import { permitted } from './peer-requests.js';

export function relayChannelData(
  ctx: TurnContext,
  socket: Socket,
  listening: NtAddress,
  datagram: Buffer,
  from: { address: string; port: number },
): void {
  const frame = readChannelData(datagram);
  if (!frame) return;
  const client = new Address(from.address, from.port);
  const allocation = ctx.server.allocations[new Transport(UDP_PROTOCOL, client, listening, socket).get5Tuple()];
  const peer = allocation?.channelBindings[frame.channel];
  if (!allocation || !peer) return;
  if (!permitted(allocation, peer.address) || ctx.peers.denies(peer.address)) return;
  allocation.sockets[0]!.send(frame.data, peer.port, peer.address, (err) => {
    if (err) ctx.log.debug({ err }, 'channel data send failed');
  });
  ctx.metrics.relayed('to_peer', frame.data.length);
}

/**
 * Around node-turn's listening-socket handler: ChannelData goes to our relay (node-turn drops
 * it); signed requests are checked against every secret first, so rotation works and refused
 * credentials are counted and logged by username.
 */
import type { Socket } from 'node:dgram';
import { Address } from '../node-turn.js';
import { isChannelData } from '../stun/codec.js';
import type { TurnContext } from '../context.js';
import { relayChannelData } from './channel-data.js';
import { wrapListeners } from './wrap.js';

type DatagramHandler = (datagram: Buffer, from: { address: string; port: number }) => void;

export function wrapListeningSocket(ctx: TurnContext, socket: Socket, listenIp: string): void {
  const listening = new Address(listenIp, ctx.server.network.listeningPort);
  wrapListeners<DatagramHandler>(socket, 'message', (original) => (datagram, from) => {
    try {
      if (isChannelData(datagram)) return relayChannelData(ctx, socket, listening, datagram, from);
      const signed = ctx.credentials.inspect(datagram);
      if (signed?.failure) {
        ctx.metrics.authFailures.inc({ reason: signed.failure });
        ctx.log.warn({ username: signed.username, reason: signed.failure, client: `${from.address}:${from.port}` }, 'credentials refused');
      }
      ctx.credentials.withCandidate(signed, () => original(datagram, from));
    } catch (err) {
      ctx.log.debug({ err }, 'datagram dropped');
    }
  });
}

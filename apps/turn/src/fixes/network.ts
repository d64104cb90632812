/**
 * node-turn's network layer (lib/network.js) replaced by our listening socket. Relayed data
 * (ChannelData, Send indications) goes to the data plane and never reaches node-turn; the rest
 * is parsed by node-turn as before. Fixes on the way: signed requests are checked against every
 * secret first, so rotation works and refused credentials are counted and logged by username
 * (within the log budget, log-budget.ts);
 * a datagram node-turn throws on is dropped (its handler logged it at error level); so is one holding
 * what no MESSAGE-INTEGRITY covers (stun/codec.ts hasUnsignedTail), which node-turn would act on.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { isIP } from 'node:net';
import { Address, Message, Transport, UDP_PROTOCOL, type NtAddress } from '../node-turn.js';
import { directLookup } from '../data-plane/scratch.js';
import type { RemoteInfo } from '../data-plane/dgram-fast.js';
import type { TurnContext } from '../context.js';
import { loggedUsername } from '../log-budget.js';
import { hasUnsignedTail } from '../stun/codec.js';

/**
 * SO_RCVBUF and SO_SNDBUF of the listening socket, which carries every client's traffic: the
 * default (about 208 KB, some 200 datagrams) overflowed in bench/turn.ts whenever the process
 * was off the CPU for a few milliseconds (the drops were counted on this socket in
 * /proc/net/udp). coturn asks 2 MB for its listeners too. The kernel caps it at
 * net.core.rmem_max / wmem_max (docs/turn.md); the size granted is logged at start.
 */
export const LISTENER_BUFFER_BYTES = 2 * 1024 * 1024;

export interface Listening {
  port: number;
  /** the socket buffer sizes the kernel granted (it reports twice the usable size) */
  recvBufferBytes: number;
  sendBufferBytes: number;
}

/** Bind the listening socket and serve on it. */
export async function listenUdp(ctx: TurnContext, ip: string, port: number): Promise<Listening> {
  // the data plane's scratch headers need sends that finish inside send(): see scratch.ts
  const socket = createSocket({
    type: isIP(ip) === 6 ? 'udp6' : 'udp4', lookup: directLookup,
    recvBufferSize: LISTENER_BUFFER_BYTES, sendBufferSize: LISTENER_BUFFER_BYTES,
  });
  socket.on('error', (err) => ctx.log.debug({ err }, 'listening socket error'));
  // registered before bind(): with a direct lookup, 'listening' can fire inside it
  const bound = Promise.race([once(socket, 'listening'), once(socket, 'error').then(([err]) => Promise.reject(err as Error))]);
  socket.bind({ address: ip, port, exclusive: true });
  await bound;
  const listening = new Address(ip, socket.address().port);
  // relayed data is the data plane's, and its receive path too (dgram-fast.ts)
  ctx.dataPlane.io.receive(socket, (datagram, from) => {
    let data: boolean;
    try {
      data = ctx.dataPlane.fromClient(socket, datagram, from);
    } catch (err) {
      // a relay socket closed under us; nothing a client sends may end the process
      return ctx.log.debug({ err }, 'relayed datagram dropped');
    }
    if (!data) control(ctx, socket, listening, datagram, from);
  });
  ctx.server.network.sockets.push(socket);
  // Send indications are the data plane's; node-turn's handler would relay without our checks
  ctx.server.removeAllListeners('send');
  return { port: listening.port, recvBufferBytes: socket.getRecvBufferSize(), sendBufferBytes: socket.getSendBufferSize() };
}

function control(ctx: TurnContext, socket: Socket, listening: NtAddress, datagram: Buffer, from: RemoteInfo): void {
  // what no MESSAGE-INTEGRITY covers must not reach node-turn, which would act on it (stun/codec.ts)
  if (hasUnsignedTail(datagram)) return ctx.log.debug({ client: `${from.address}:${from.port}` }, 'datagram with unsigned trailing content dropped');
  try {
    const signed = ctx.credentials.inspect(datagram);
    if (signed?.failure) {
      ctx.metrics.authFailures.inc({ reason: signed.failure });
      ctx.logBudget.warn('credentials refused', { username: loggedUsername(signed.username), reason: signed.failure, client: `${from.address}:${from.port}` });
    }
    const transport = new Transport(UDP_PROTOCOL, new Address(from.address, from.port), listening, socket);
    const msg = new Message(ctx.server, transport);
    ctx.credentials.withCandidate(signed, () => {
      if (msg.read(datagram)) ctx.server.emit('message', msg);
    });
  } catch (err) {
    ctx.log.debug({ err }, 'datagram dropped');
  }
}

/** Close the listening sockets; resolves when they are closed (or after a second). */
export async function closeUdp(ctx: TurnContext): Promise<void> {
  const sockets = ctx.server.network.sockets.splice(0);
  const closed = sockets.map((s) => once(s, 'close'));
  for (const socket of sockets) {
    // the native path's duplicate descriptor first (dgram-fast.ts), so the port is free when 'close' comes
    ctx.dataPlane.io.stopReceiving(socket);
    socket.close();
  }
  await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 1000).unref())]);
}

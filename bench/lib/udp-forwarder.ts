/**
 * The floor for bench/turn.ts: a bare Node UDP forwarder put between turnutils_uclient and
 * coturn. Per client it opens one upstream socket (as a relay opens one relay socket), so per
 * relayed message it does what a TURN relay does in Node (a datagram received and one sent on
 * each side) without any TURN work: what Node's dgram layer alone costs for the same traffic.
 *
 *   node --import tsx bench/lib/udp-forwarder.ts <listen port> <upstream port>   (127.0.0.1)
 */
import { createSocket, type Socket } from 'node:dgram';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const HOST = '127.0.0.1';
/** as apps/turn's sockets (data-plane/scratch.ts): IP literals need no lookup, the send happens inside send() */
const lookup = (address: string, _family: unknown, callback: (err: Error | null, address: string, family: number) => void) => callback(null, address, 4);

const listener = createSocket({ type: 'udp4', lookup });
const upstream = new Map<number, Socket>();
listener.on('message', (datagram: Buffer, from: { address: string; port: number }) => {
  let socket = upstream.get(from.port);
  if (!socket) {
    const client = socket = createSocket({ type: 'udp4', lookup });
    client.on('message', (reply: Buffer) => listener.send(reply, from.port, from.address));
    client.on('error', () => {});
    client.bind(0, HOST);
    upstream.set(from.port, client);
  }
  socket.send(datagram, upstreamPort!, HOST);
});
listener.on('error', () => {});
listener.bind(listenPort!, HOST, () => process.stdout.write('forwarding\n'));

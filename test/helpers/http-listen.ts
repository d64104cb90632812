/**
 * A test's own HTTP server (a webhook receiver) on loopback. close() also ends the sockets kept
 * alive by its clients (the server under test's webhook client), or server.close would wait for
 * them.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on 127.0.0.1:`port` (0: a free one); the port it got, and how to close it. */
export async function listenLocal(server: Server, port = 0): Promise<{ port: number; close: () => Promise<void> }> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}

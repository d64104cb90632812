/**
 * One WebSocket upgrade request, answered by status: 101 when the server accepts it, otherwise
 * the HTTP status it refused it with. The upgraded socket (if any) is destroyed at once.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { withTimeout } from './timeout.js';

export function upgradeStatus(url: string, opts: { localAddress?: string } = {}): Promise<number> {
  const req = request(url, {
    ...opts,
    headers: {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-key': randomBytes(16).toString('base64'),
      'sec-websocket-version': '13',
    },
  });
  const answered = new Promise<number>((resolve, reject) => {
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 101);
    });
    req.once('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
  });
  req.end();
  return withTimeout(answered, 5000, `upgrade ${url}`);
}

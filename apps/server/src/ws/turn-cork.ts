/**
 * Holds a socket's writes until the end of the current turn of the event loop, so that the
 * frames one receiver gets in one turn leave in one writev instead of one system call each:
 * on loopback the kernel's share of a small frame costs more than the server's JavaScript
 * (bench/signaling.ts). ws corks and uncorks around each frame itself; an outer cork keeps
 * the socket corked across those until the flush, which runs after the poll phase.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

const corked: Socket[] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  const list = corked.splice(0);
  for (const socket of list) socket.uncork();
}

/** Cork the WebSocket's TCP socket until the end of this turn (once per turn; idempotent). */
export function corkForTurn(ws: WebSocket): void {
  // ws keeps its net.Socket in _socket (ws 8); without one there is nothing to cork.
  const socket = (ws as unknown as { _socket?: Socket })._socket;
  if (!socket || socket.writableCorked > 0 || socket.destroyed) return;
  socket.cork();
  corked.push(socket);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

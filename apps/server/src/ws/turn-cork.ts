/**
 * Holds a socket's writes until the end of the current turn of the event loop, so that the
 * frames one receiver gets in one turn leave in one writev instead of one system call each:
 * on loopback the kernel's share of a small frame costs more than the server's JavaScript
 * (bench/signaling.ts). ws corks and uncorks around each frame itself; an outer cork keeps
 * the socket corked across those until the flush, which runs after the poll phase.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** One per endpoint (signaling/deps.ts): the sockets corked during this turn, uncorked at its end. */
export class TurnCork {
  private corked: Socket[] = [];
  private scheduled = false;
  private readonly flush = (): void => {
    this.scheduled = false;
    const list = this.corked;
    this.corked = [];
    for (const socket of list) socket.uncork();
  };

  /** Cork the WebSocket's TCP socket until the end of this turn (once per turn; idempotent). */
  cork(ws: WebSocket): void {
    // ws keeps its net.Socket in _socket (ws 8); without one there is nothing to cork.
    const socket = (ws as unknown as { _socket?: Socket })._socket;
    if (!socket || socket.writableCorked > 0 || socket.destroyed) return;
    socket.cork();
    this.corked.push(socket);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }
}

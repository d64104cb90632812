/**
 * One listener of each kind for every socket of an endpoint, instead of closures per connection:
 * the listener finds its connection through a WeakMap keyed by the socket (`this` in a ws
 * listener). An idle connection's cost is what it holds (docs/benchmarks.md, memory).
 */
import type { RawData, WebSocket } from 'ws';

export interface SocketHandlers<C> {
  message(conn: C, data: RawData): void;
  close(conn: C, code: number): void;
  /**
   * Optional: ws/upgrade-hooks.ts already puts one 'error' listener on every socket (it counts and
   * logs the error and ends the socket). Without this, a socket has one 'error' listener instead
   * of two, which EventEmitter keeps as a bare function rather than an array.
   */
  error?(conn: C, err: Error): void;
}

export class SharedListeners<C> {
  private readonly bySocket = new WeakMap<WebSocket, C>();
  private readonly onMessage: (this: WebSocket, data: RawData) => void;
  private readonly onClose: (this: WebSocket, code: number) => void;
  private readonly onError: ((this: WebSocket, err: Error) => void) | null;

  constructor(handlers: SocketHandlers<C>) {
    const bySocket = this.bySocket;
    this.onMessage = function (data) {
      const conn = bySocket.get(this);
      if (conn) handlers.message(conn, data);
    };
    this.onClose = function (code) {
      const conn = bySocket.get(this);
      if (conn) handlers.close(conn, code);
    };
    const error = handlers.error;
    this.onError = error
      ? function (err) {
          const conn = bySocket.get(this);
          if (conn) error(conn, err);
        }
      : null;
  }

  /** Attaches the shared listeners to `socket` for `conn` (ws emits 'close' once; `once` would add a wrapper per socket). */
  attach(socket: WebSocket, conn: C): void {
    this.bySocket.set(socket, conn);
    socket.on('message', this.onMessage);
    socket.on('close', this.onClose);
    if (this.onError) socket.on('error', this.onError);
  }
}

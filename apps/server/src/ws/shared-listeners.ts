/**
 * One listener of each kind for every socket of an endpoint, instead of closures per connection:
 * the listener finds its connection through a WeakMap keyed by the socket (`this` in a ws
 * listener). An idle connection's cost is what it holds (docs/benchmarks.md, memory).
 */
import type { RawData, WebSocket } from 'ws';
import type { Admission } from './admission.js';
import type { Keepalive } from './keepalive.js';

/** What watches every socket of an endpoint besides its connection: released by the one 'close' listener. */
export interface SocketWatchers {
  keepalive: Keepalive;
  admission: Admission;
}

export interface SocketHandlers<C> {
  message(conn: C, data: RawData): void;
  close(conn: C, code: number): void;
  /**
   * Optional: ws/upgrade-hooks.ts already puts one 'error' listener on every socket (it counts and
   * logs the error and ends the socket). Without this, a socket has one 'error' listener instead
   * of two, which EventEmitter keeps as a bare function rather than an array.
   */
  error?(conn: C, err: Error): void;
  /** The connection's keepalive and admission: attach() watches the socket with both, and its close releases it from both. */
  watchers(conn: C): SocketWatchers;
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
    // The socket's one 'close' listener: keepalive and admission put none of their own, and ws's
    // client tracking is off (app.ts; admission tracks the open sockets). They are released
    // after the connection's own close handler, in the order their listeners used to run.
    this.onClose = function (code) {
      const conn = bySocket.get(this);
      if (!conn) return;
      try {
        handlers.close(conn, code);
      } finally {
        const { keepalive, admission } = handlers.watchers(conn);
        keepalive.release(this);
        admission.release(this);
      }
    };
    const error = handlers.error;
    this.onError = error
      ? function (err) {
          const conn = bySocket.get(this);
          if (conn) error(conn, err);
        }
      : null;
    this.watchers = (conn) => handlers.watchers(conn);
  }

  private readonly watchers: (conn: C) => SocketWatchers;

  /**
   * Attaches the shared listeners to `socket` for `conn` (ws emits 'close' once; `once` would add
   * a wrapper per socket) and has the connection's keepalive watch it. Admission's safety-net
   * 'close' listener comes off once ours is on, so the socket keeps ours alone.
   */
  attach(socket: WebSocket, conn: C): void {
    const { keepalive, admission } = this.watchers(conn);
    this.bySocket.set(socket, conn);
    socket.on('message', this.onMessage);
    socket.on('close', this.onClose);
    admission.adopt(socket);
    if (this.onError) socket.on('error', this.onError);
    keepalive.watch(socket);
  }
}

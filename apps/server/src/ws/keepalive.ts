/**
 * WebSocket-level liveness for every endpoint: one shared interval (not a timer per socket)
 * pings each watched socket and terminates one that did not answer the previous ping, since a
 * dead peer would never complete a close handshake. Terminating emits 'close', so each
 * endpoint's own close handler does its bookkeeping as for any other close.
 * Keepalive puts no 'close' listener on a socket: the endpoint's one close listener calls
 * release() (ws/shared-listeners.ts), so a socket carries ws's and ours, not an array of four.
 */
import type { WebSocket } from 'ws';

export class Keepalive {
  private readonly alive = new Map<WebSocket, boolean>();
  private readonly timer: NodeJS.Timeout;

  // One listener for every socket (`this` is the socket): no closure per connection.
  private readonly onPong = ((keepalive: Keepalive) =>
    function (this: WebSocket): void {
      keepalive.touch(this);
    })(this);

  constructor(intervalMs: number) {
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  watch(ws: WebSocket): void {
    this.alive.set(ws, true);
    ws.on('pong', this.onPong);
  }

  /** The socket closed: it is no longer pinged (its owner's 'close' listener calls this). */
  release(ws: WebSocket): void {
    this.alive.delete(ws);
  }

  /** Evidence of life other than a pong (e.g. a frame received) counts for this interval. */
  touch(ws: WebSocket): void {
    // One lookup when already marked alive (every frame but the first after a sweep).
    if (this.alive.get(ws) === false) this.alive.set(ws, true);
  }

  stop(): void {
    clearInterval(this.timer);
    this.alive.clear();
  }

  private sweep(): void {
    for (const [ws, alive] of this.alive) {
      if (!alive) {
        this.alive.delete(ws);
        ws.terminate();
        continue;
      }
      this.alive.set(ws, false);
      if (ws.readyState === ws.OPEN) ws.ping();
    }
  }
}

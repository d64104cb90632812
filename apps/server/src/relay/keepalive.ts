/**
 * Pings every relay socket on one shared interval (not a timer per connection) and terminates
 * sockets that did not answer the previous ping, as the stock server does every 30 s.
 */
import type { WebSocket } from 'ws';

export class Keepalive {
  private readonly alive = new Map<WebSocket, boolean>();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 30_000) {
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  watch(ws: WebSocket): void {
    this.alive.set(ws, true);
    ws.on('pong', () => this.alive.set(ws, true));
    ws.once('close', () => this.alive.delete(ws));
  }

  stop(): void {
    clearInterval(this.timer);
    this.alive.clear();
  }

  private sweep(): void {
    for (const [ws, alive] of this.alive) {
      if (!alive) {
        ws.terminate();
        continue;
      }
      this.alive.set(ws, false);
      ws.ping();
    }
  }
}

/**
 * WebSocket-level liveness for every endpoint: one shared interval (not a timer per socket)
 * pings each watched socket and terminates one that sent nothing since the previous ping (no
 * pong, no frame), since a dead peer would never complete a close handshake. Terminating emits
 * 'close', so each endpoint's own close handler does its bookkeeping as for any other close.
 * Keepalive puts no listener on a socket: it reads how many bytes the TCP socket has received
 * (a pong or any frame moves it), and the endpoint's one close listener calls release()
 * (ws/shared-listeners.ts). A 'pong' listener was a fourth event name on the socket, which grew
 * ws's listener table (a dictionary) from 4 to 8 slots: 96 B per socket (docs/benchmarks.md, memory).
 */
import type { WebSocket } from 'ws';
import { readQueue, tcpSocket } from './ws-internals.js';

/** The socket's entry when touch() vouched for it since the last sweep. */
const TOUCHED = -1;

export class Keepalive {
  /** each watched socket: its received byte count at the last sweep (low 30 bits, a small integer), or TOUCHED */
  private readonly alive = new Map<WebSocket, number>();
  private readonly timer: NodeJS.Timeout;
  private trimTimer: NodeJS.Timeout | null = null;

  constructor(private readonly intervalMs: number) {
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  watch(ws: WebSocket): void {
    this.alive.set(ws, TOUCHED);
  }

  /** The socket closed: it is no longer pinged (its owner's 'close' listener calls this). */
  release(ws: WebSocket): void {
    this.alive.delete(ws);
  }

  /**
   * Evidence of life the byte count does not show counts for this interval: a socket whose
   * reading is paused (ws/read-throttle.ts) receives nothing, pongs included.
   */
  touch(ws: WebSocket): void {
    // One lookup when already marked (every call but the first after a sweep).
    const mark = this.alive.get(ws);
    if (mark !== undefined && mark !== TOUCHED) this.alive.set(ws, TOUCHED);
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.trimTimer) clearTimeout(this.trimTimer);
    this.trimTimer = null;
    this.alive.clear();
  }

  private sweep(): void {
    for (const [ws, mark] of this.alive) {
      const read = bytesRead(ws);
      if (mark === read) {
        this.alive.delete(ws);
        ws.terminate();
        continue;
      }
      this.alive.set(ws, read);
      if (ws.readyState === ws.OPEN) ws.ping();
    }
    // After the pongs to these pings have been read (reading one regrows the queue's storage).
    this.trimTimer ??= setTimeout(() => this.trim(), Math.min(TRIM_AFTER_MS, this.intervalMs / 2));
    this.trimTimer.unref();
  }

  private trim(): void {
    this.trimTimer = null;
    for (const ws of this.alive.keys()) trimReadQueue(ws);
  }
}

/** How long after the pings the read queues are trimmed: pongs on a working connection are back by then. */
const TRIM_AFTER_MS = 2000;

/**
 * ws's receiver queues each chunk read in an array and shifts it off once parsed; V8's optimized
 * shift leaves the emptied array's storage (17 slots, 152 B) in place, so a socket that has read
 * anything (a pong) holds it while idle. Setting the length of the empty array to 0 lets it go
 * (the next chunk grows it again): once per interval, shortly after the pings, not per message,
 * which would regrow it for every chunk of a busy socket. Nothing is queued when the array is
 * empty (ws's lib/receiver.js).
 */
function trimReadQueue(ws: WebSocket): void {
  const queue = readQueue(ws);
  if (queue?.length === 0) queue.length = 0;
}

/** What the socket's TCP connection has received so far, low 30 bits (kept a small integer; a wrap needs 1 GiB in one interval). */
function bytesRead(ws: WebSocket): number {
  return (tcpSocket(ws)?.bytesRead ?? 0) & 0x3fffffff;
}

/**
 * Backpressure for one WebSocket: stop reading its TCP socket until a wait is over, so the
 * sender's data stays in the kernel and the sender's own buffers (TCP flow control), not in
 * server memory. Frames ws had already read still arrive while paused; the rate limiter
 * counts them (limits/rate-limiter.ts).
 */
import type { WebSocket } from 'ws';

const ALIVE_EVERY_MS = 1000;

export class ReadThrottle {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ws: WebSocket,
    /** how long reading must still wait; asked again when a wait ends */
    private readonly remainingMs: () => number,
    /**
     * called about every second while paused and when reading resumes: a paused socket cannot
     * read pongs, and its peer has shown it is alive by sending; the caller tells its keepalive
     */
    private readonly alive: () => void,
  ) {
    ws.on('close', () => this.stop()); // 'close' comes once; `once` would add a wrapper per socket
  }

  get paused(): boolean {
    return this.timer !== undefined;
  }

  /** Pauses reading unless already paused; true when this call paused it. */
  pause(): boolean {
    if (this.timer || this.ws.readyState !== this.ws.OPEN) return false;
    this.ws.pause();
    this.schedule(Math.max(1, this.remainingMs()));
    return true;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.ws.readyState !== this.ws.OPEN) return;
      this.alive();
      const more = this.remainingMs();
      if (more > 0) return this.schedule(more);
      this.ws.resume();
    }, Math.min(ms, ALIVE_EVERY_MS));
  }
}

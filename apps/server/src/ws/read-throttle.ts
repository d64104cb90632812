/**
 * Backpressure for one WebSocket: stop reading its TCP socket until a wait is over, so the
 * sender's data stays in the kernel and the sender's own buffers (TCP flow control), not in
 * server memory. Frames ws had already read still arrive while paused; the rate limiter
 * counts them (limits/rate-limiter.ts).
 *
 * Two reasons keep reading paused: the rate (pause: a timer until the limiter's debt is paid)
 * and a hold (hold/release: the connection is not ready for what it would read, e.g. its room
 * is loading). Reading resumes only when neither wants it paused, so the rate timer never
 * reads a held socket and a release never reads one still over its rate.
 */
import type { WebSocket } from 'ws';

const ALIVE_EVERY_MS = 1000;

export class ReadThrottle {
  private timer: NodeJS.Timeout | undefined;
  private held = false;

  constructor(
    private readonly ws: WebSocket,
    /** how long reading must still wait; asked again when a wait ends */
    private readonly remainingMs: () => number,
    /**
     * called about every second while paused for the rate and when that wait ends: a paused
     * socket cannot read pongs, and its peer has shown it is alive by sending; the caller tells
     * its keepalive
     */
    private readonly alive: () => void,
  ) {}

  /** paused for the rate (the limiter's wait is not over) */
  get paused(): boolean {
    return this.timer !== undefined;
  }

  /** reading is held (hold) until released */
  get holding(): boolean {
    return this.held;
  }

  /** Pauses reading for the rate unless already so paused; true when this call paused it. */
  pause(): boolean {
    if (this.timer || this.ws.readyState !== this.ws.OPEN) return false;
    this.ws.pause();
    this.schedule(Math.max(1, this.remainingMs()));
    return true;
  }

  /** Stops reading until release(), whatever the rate wait does meanwhile. */
  hold(): void {
    this.held = true;
    if (!this.ws.isPaused) this.ws.pause();
  }

  /** Ends the hold: reading goes on unless the rate still holds it (its timer resumes it then). */
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (!this.timer) this.ws.resume();
  }

  /**
   * The socket closed: the rate wait's timer ends now. Called from the owner's one shared 'close'
   * listener (ws/shared-listeners.ts): a listener of its own here would give the socket a second
   * one, made only when reading was first paused (apps/server/test/upgrade-release.test.ts).
   */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Closing: the close handshake must read the peer's close frame (what else comes is ignored).
      if (this.ws.readyState !== this.ws.OPEN) {
        if (!this.held) this.ws.resume();
        return;
      }
      this.alive();
      const more = this.remainingMs();
      if (more > 0) return this.schedule(more);
      if (!this.held) this.ws.resume();
    }, Math.min(ms, ALIVE_EVERY_MS));
  }
}

/**
 * The retry of both local stores (update-log.ts, indexeddb.ts) after a failed write: one timer at
 * a time; the whole document is written again after 1 s, doubling up to a minute while that
 * fails, back to 1 s once it succeeds. The client's one back-off (backoff.ts), without its jitter:
 * a device's own storage, not a server many devices come back to at once.
 */
import { Backoff } from '../backoff.js';

/** the first wait after a failed write */
const REWRITE_RETRY_MS = 1_000;
/** no wait above this */
const REWRITE_RETRY_MAX_MS = 60_000;

export class RewriteRetry {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly backoff = new Backoff({ baseMs: REWRITE_RETRY_MS, maxMs: REWRITE_RETRY_MAX_MS, random: () => 1 });

  /** Runs `run` after the next wait, unless a retry is already waiting. */
  schedule(run: () => void): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      run();
    }, this.backoff.next());
  }

  /** The rewrite succeeded: nothing waits, and the next failure waits the first wait again. */
  succeeded(): void {
    this.backoff.reset();
    this.cancel();
  }

  /** Nothing more runs (close, destroy); the wait grows on from where it was. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

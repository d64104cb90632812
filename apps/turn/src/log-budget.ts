/**
 * A budget for warn lines a client can trigger ('credentials refused', 'allocation refused',
 * 'peer denied'): UDP source addresses are spoofable, and an authenticated client asks for denied
 * peers as fast as it sends, so without one a single host could make the server write a line per
 * datagram. Each kind gets `perInterval` lines per interval; the rest are counted and
 * reported once per interval in one 'log lines suppressed' line per kind (the metrics still count
 * every refusal). Usernames are cut to LOGGED_USERNAME_MAX characters.
 */
import type { Logger } from '@sync-suite/shared/node';

/** Longest username written to the log, in UTF-16 units (REST usernames are `<expiry>:<sub>`). */
export const LOGGED_USERNAME_MAX = 128;

/** `username` cut to LOGGED_USERNAME_MAX units (the cut is marked with '…'). */
export function loggedUsername(username: string | undefined): string | undefined {
  if (username === undefined || username.length <= LOGGED_USERNAME_MAX) return username;
  return `${username.slice(0, LOGGED_USERNAME_MAX - 1)}…`;
}

export type BudgetedLine = 'credentials refused' | 'allocation refused' | 'peer denied';

export class LogBudget {
  private readonly written = new Map<BudgetedLine, number>();
  private readonly suppressed = new Map<BudgetedLine, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    private readonly perInterval: number,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Write `fields` at warn as `kind` if this interval's budget allows; otherwise count it. */
  warn(kind: BudgetedLine, fields: Record<string, unknown>): void {
    const written = this.written.get(kind) ?? 0;
    if (written >= this.perInterval) {
      this.suppressed.set(kind, (this.suppressed.get(kind) ?? 0) + 1);
      return;
    }
    this.written.set(kind, written + 1);
    this.log.warn(fields, kind);
  }

  /** End the interval: one line per kind that had lines suppressed, and a fresh budget. */
  flush(): void {
    for (const [kind, suppressed] of this.suppressed) this.log.warn({ kind, suppressed }, 'log lines suppressed');
    this.suppressed.clear();
    this.written.clear();
  }

  /** Report what is pending and stop the timer. */
  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}

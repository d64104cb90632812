/**
 * A budget for warn lines a client can trigger (the TURN server's refusals, the admin API's
 * refused requests): without one a single host could make a server write a line per request or
 * datagram. Each kind gets `perInterval` lines per interval; the rest are counted and reported
 * once per interval in one 'log lines suppressed' line per kind (metrics still count every one).
 */

/** What the budget writes through: a pino logger or anything with its `warn(fields, msg)`. */
export interface WarnLog {
  warn(fields: Record<string, unknown>, msg: string): void;
}

export class LogBudget<Kind extends string = string> {
  private readonly written = new Map<Kind, number>();
  private readonly suppressed = new Map<Kind, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: WarnLog,
    private readonly perInterval: number,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Write `fields` at warn as `kind` if this interval's budget allows; otherwise count it. */
  warn(kind: Kind, fields: Record<string, unknown>): void {
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

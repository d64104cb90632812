/**
 * Whether to write a warn line about a key (a room, a room and a cause) now: at most once per
 * interval per key, so trouble that keeps recurring for one room never floods the log while its
 * metric counts every time. Keys are remembered up to a bound, then forgotten all at once (at
 * worst a few repeated lines), so hostile room names cannot grow it without limit.
 */
export class ReportGate {
  /** key -> when it was last reported */
  private readonly reported = new Map<string, number>();

  constructor(
    private readonly everyMs: number,
    private readonly maxRemembered: number,
  ) {}

  /** Whether to report under `key` now (and, if so, remember that it was). */
  shouldReport(key: string, now = Date.now()): boolean {
    const last = this.reported.get(key);
    if (last !== undefined && now - last < this.everyMs) return false;
    if (this.reported.size >= this.maxRemembered) this.reported.clear();
    this.reported.set(key, now);
    return true;
  }
}

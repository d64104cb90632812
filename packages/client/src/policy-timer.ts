/**
 * One relay-policy timer (the grace before the relay, the hold before letting it go): runs once,
 * and remembers that it elapsed until it is stopped or reset.
 */
export class PolicyTimer {
  /** true once the time ran out; read by the relay policy */
  elapsed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ms: () => number,
    private readonly onElapsed: () => void,
  ) {}

  /** Start, unless it is running or has already elapsed. */
  start(): void {
    if (this.timer !== undefined || this.elapsed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.elapsed = true;
      this.onElapsed();
    }, this.ms());
  }

  /** Stop it if it is running, and forget that it elapsed. */
  stop(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.elapsed = false;
  }

  /** For destroy(): no callback after this. */
  dispose(): void {
    clearTimeout(this.timer);
  }
}

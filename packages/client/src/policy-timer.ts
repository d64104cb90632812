/**
 * One relay-policy timer (the grace before the relay, the hold before letting it go): runs once,
 * and remembers that it elapsed until it is stopped or reset.
 */
export class PolicyTimer {
  private ran = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ms: () => number,
    private readonly onElapsed: () => void,
  ) {}

  /** true once the time ran out; read by the relay policy */
  get elapsed(): boolean {
    return this.ran;
  }

  /** Start, unless it is running or has already elapsed. */
  start(): void {
    if (this.timer !== undefined || this.ran) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.ran = true;
      this.onElapsed();
    }, this.ms());
  }

  /** Stop it if it is running, and forget that it elapsed. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.ran = false;
  }

  /** For destroy(): no callback after this. */
  dispose(): void {
    clearTimeout(this.timer);
  }
}

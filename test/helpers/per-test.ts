/**
 * What one test starts (a server, a TURN server) and what it opens on it (clients, providers,
 * documents), closed when the test ends. In a test file:
 *
 *   const scope = new PerTest(startServer);
 *   afterEach(() => scope.close());
 *   ... const server = await scope.start({ AUTH_SECRET: TEST_SECRET }); scope.track(client);
 */

/** Closed with close() or, for Yjs documents and providers, destroy(). */
export type Closable = { close(): unknown } | { destroy(): unknown };

export class PerTest<Args extends unknown[], T extends { close(): Promise<void> }> {
  private running: T | undefined;
  private readonly closers: Array<() => unknown> = [];

  constructor(private readonly starter: (...args: Args) => Promise<T>) {}

  /** Start this test's instance (again, after the test closed the previous one). */
  async start(...args: Args): Promise<T> {
    this.running = await this.starter(...args);
    return this.running;
  }

  /** The instance this test started; throws when it started none. */
  get current(): T {
    if (!this.running) throw new Error('nothing started in this test');
    return this.running;
  }

  /** Close these when the test ends, in the order tracked, before the instance. */
  track(...things: Closable[]): void {
    for (const thing of things) this.closers.push(() => ('destroy' in thing ? thing.destroy() : thing.close()));
  }

  /** Close what was tracked so far (all at once), e.g. before restarting the instance. */
  async closeTracked(): Promise<void> {
    await Promise.all(this.closers.splice(0).map((close) => close()));
  }

  /** For afterEach: the tracked things, then the instance. */
  async close(): Promise<void> {
    await this.closeTracked();
    await this.running?.close();
    this.running = undefined;
  }
}

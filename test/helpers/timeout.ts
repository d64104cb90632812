/** Bound any wait: tests wait on events, and an event that never comes must fail the test, not hang it. */

/** Reject with a clear message if `promise` has not settled within `ms` (page.evaluate, once() and friends have no timeout). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Resolves once `count()` reaches `n`, checked now and on every `event` of `emitter` (a test
 * receiver emits it per request); rejects after `ms` naming `what`.
 */
export function untilCount(emitter: NodeJS.EventEmitter, event: string, count: () => number, n: number, ms: number, what: string): Promise<void> {
  let check = (): void => undefined;
  const reached = new Promise<void>((resolve) => {
    check = (): void => {
      if (count() < n) return;
      emitter.off(event, check);
      resolve();
    };
    emitter.on(event, check);
    check();
  });
  return withTimeout(reached, ms, what).finally(() => emitter.off(event, check));
}

/**
 * Resolves once `f()` is true, asked every 50 ms (for state with no event to wait on, such as a
 * metric read over HTTP); rejects after `ms` naming `what`.
 */
export async function eventually(f: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

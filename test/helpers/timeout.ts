/** Bound any wait: tests wait on events, and an event that never comes must fail the test, not hang it. */

/** Reject with a clear message if `promise` has not settled within `ms` (page.evaluate, once() and friends have no timeout). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

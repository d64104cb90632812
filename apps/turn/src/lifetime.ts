/**
 * Allocation lifetimes as RFC 5766 section 6.2 computes them: min(requested, max), but never
 * below the default (600 s, or the max when TURN_MAX_LIFETIME_SECONDS is smaller).
 */
export interface LifetimePolicy {
  readonly defaultSeconds: number;
  readonly maxSeconds: number;
  seconds(requested: number | undefined): number;
}

export function lifetimePolicy(maxSeconds: number): LifetimePolicy {
  const defaultSeconds = Math.min(600, maxSeconds);
  return {
    defaultSeconds,
    maxSeconds,
    seconds: (requested) =>
      requested === undefined ? defaultSeconds : Math.max(defaultSeconds, Math.min(requested, maxSeconds)),
  };
}

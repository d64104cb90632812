/** The `fraction` (0.5 for p50, 0.99 for p99) percentile of ascending `sorted` values; NaN when there are none. */
export function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? NaN;
}

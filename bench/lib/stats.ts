/** Small statistics for benchmark rounds. */

/**
 * The median of the values (for an even count the mean of the two middle ones: either one alone
 * leans low or high, which matters with two or four rounds); NaN when empty.
 */
export function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[mid] as number;
  return sorted.length === 0 ? NaN : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** "min-max" of the values, for showing the noise across rounds. */
export function spread(values: number[], digits = 1): string {
  const ok = values.filter((v) => Number.isFinite(v));
  if (ok.length === 0) return '';
  return `${Math.min(...ok).toFixed(digits)}-${Math.max(...ok).toFixed(digits)}`;
}

/** BENCH_ROUNDS, at least 1 (default 3: every figure is a median of three). */
export function rounds(): number {
  return Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 3));
}

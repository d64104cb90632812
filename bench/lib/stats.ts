/** Small statistics for benchmark rounds. */

/** The median of the values (the lower middle one for an even count); NaN when empty. */
export function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
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

/**
 * Metric names used by a PromQL expression, so CI can check that dashboards and alerts
 * only query metrics the code defines. Not a parser: strips label matchers, grouping
 * clauses, strings and durations, then drops PromQL's own words.
 */

const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'group',
  'count_values', 'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'histogram_quantile',
  'abs', 'ceil', 'floor', 'round', 'clamp_min', 'clamp_max', 'absent', 'vector', 'scalar', 'time',
  'avg_over_time', 'max_over_time', 'min_over_time', 'sum_over_time', 'count_over_time',
  'label_replace', 'label_join', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right',
  'and', 'or', 'unless', 'offset', 'bool',
]);

export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    const next = stripped.slice((m.index ?? 0) + word.length).trimStart();
    if (PROMQL_WORDS.has(word) || next.startsWith('(')) continue;
    names.add(word);
  }
  return [...names];
}

/** A histogram `h` is queried as h_bucket, h_sum and h_count. */
export function baseMetricName(name: string, histograms: ReadonlySet<string>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix) && histograms.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  }
  return name;
}

/**
 * The one reader of Prometheus text exposition for every test (prom-client writes it, but does
 * not parse it). A metric that the text does not declare (no `# TYPE` line for it) is an
 * error, not 0: a renamed or misspelt metric must fail the test that reads it. A declared
 * metric with no sample for the asked labels is 0, as prom-client writes no line for a label
 * set that was never observed.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** `name` or `name{label="value",...}`, as written in the exposition and in PromQL selectors. */
export type Selector = string;

const SAMPLE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g;
/** Sample-name suffixes of histograms and summaries, whose `# TYPE` line names the family. */
const FAMILY_SUFFIXES = ['_bucket', '_sum', '_count'];

function unescape(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const m of (text ?? '').matchAll(LABEL)) labels[m[1] as string] = unescape(m[2] as string);
  return labels;
}

/** Splits `name{a="b"}` into the name and its labels. */
export function parseSelector(selector: Selector): { name: string; labels: Record<string, string> } {
  const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?$/.exec(selector.trim());
  if (!m) throw new Error(`not a metric selector: ${selector}`);
  return { name: m[1] as string, labels: parseLabels(m[2]) };
}

export class PrometheusText {
  readonly samples: Sample[] = [];
  /** family name → type, from the `# TYPE` lines */
  readonly types = new Map<string, string>();

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      const type = /^# TYPE (\S+) (\S+)/.exec(line);
      if (type) this.types.set(type[1] as string, type[2] as string);
      if (line.startsWith('#') || line.trim() === '') continue;
      const m = SAMPLE.exec(line);
      if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
      this.samples.push({ name: m[1] as string, labels: parseLabels(m[2]), value: Number(m[3]) });
    }
  }

  /** True when the text declares the metric (its family has a `# TYPE` line). */
  has(name: string): boolean {
    if (this.types.has(name)) return true;
    const suffix = FAMILY_SUFFIXES.find((s) => name.endsWith(s));
    return suffix !== undefined && this.types.has(name.slice(0, -suffix.length));
  }

  /**
   * The sum of the samples of `selector`'s metric whose labels include the selector's labels
   * (and `labels`). Throws when the metric is not declared, unless `opts.absent` gives the
   * value to use then.
   */
  value(selector: Selector, labels: Record<string, string> = {}, opts: { absent?: number } = {}): number {
    const wanted = parseSelector(selector);
    const all = { ...wanted.labels, ...labels };
    if (!this.has(wanted.name)) {
      if (opts.absent !== undefined) return opts.absent;
      const prefix = wanted.name.split('_')[0] ?? '';
      const near = [...this.types.keys()].filter((n) => n.startsWith(prefix));
      throw new Error(`metric ${wanted.name} is not exposed (no # TYPE line); exposed ${prefix}_*: ${near.join(', ')}`);
    }
    return this.samples
      .filter((s) => s.name === wanted.name && Object.entries(all).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  }
}

export function parsePrometheus(text: string): PrometheusText {
  return new PrometheusText(text);
}

/** GET `url` (a /metrics URL) and parse it; throws on a status other than 200. */
export async function scrapeMetrics(url: string, headers: Record<string, string> = {}): Promise<PrometheusText> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${text.slice(0, 200)}`);
  return new PrometheusText(text);
}

/** One metric's value from `url`: see PrometheusText.value. */
export async function scrapeMetric(url: string, selector: Selector, labels: Record<string, string> = {}): Promise<number> {
  return (await scrapeMetrics(url)).value(selector, labels);
}

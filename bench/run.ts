/**
 * `npm run bench` runs every scenario in bench/ (each file but this one that exports `run()`);
 * `npm run bench -- relay signaling` runs the named ones. Each scenario returns a list of flat
 * result rows; this prints them as tables and writes them to docs/benchmarks.md, replacing only
 * the sections of the scenarios that ran. Only the harness runs through tsx: the scenarios start
 * our server from the production bundle (bench/lib/bundle.ts), as the runtime image runs it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const BENCH_DIR = join(ROOT, 'bench');
const OUTPUT = join(ROOT, 'docs', 'benchmarks.md');

type Row = Record<string, unknown>;
interface Scenario {
  name: string;
  run: () => Promise<unknown>;
}

function scenarioFiles(): string[] {
  return readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.d.ts'))
    .map((f) => basename(f, '.ts'))
    .sort();
}

async function load(name: string): Promise<Scenario | undefined> {
  const mod = (await import(pathToFileURL(join(BENCH_DIR, `${name}.ts`)).href)) as { run?: unknown };
  return typeof mod.run === 'function' ? { name, run: mod.run as Scenario['run'] } : undefined;
}

function cell(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** A Markdown table of rows, columns in first-seen order. */
function table(rows: Row[]): string {
  const head = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const body = rows.map((r) => head.map((h) => cell(r[h]).replace(/\|/g, '\\|')));
  const widths = head.map((h, i) => Math.max(3, h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function asRows(result: unknown): Row[] {
  const list = Array.isArray(result) ? (result as unknown[]) : result === undefined ? [] : [result];
  return list.map((r) => (r && typeof r === 'object' ? (r as Row) : { value: r }));
}

function machine(): string {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  const cpu = cpus();
  // The load average tells how busy the shared machine was: CPU figures are noisier the higher it is.
  return `${new Date().toISOString()}, commit ${commit}, Node ${process.version}, ${cpu.length} x ${cpu[0]?.model ?? 'cpu'}, load average ${loadavg()[0]?.toFixed(1)}; our server: the production bundle`;
}

/** Replace (or append) each scenario's section between its markers, keeping the others. */
function writeDoc(sections: Map<string, string>): void {
  let doc = existsSync(OUTPUT)
    ? readFileSync(OUTPUT, 'utf8')
    : '# Benchmarks\n\nWritten by `npm run bench` (bench/run.ts); each section is replaced when its scenario runs again.\n';
  for (const [name, text] of sections) {
    const start = `<!-- bench:${name} -->`;
    const end = `<!-- /bench:${name} -->`;
    const block = `${start}\n${text}\n${end}`;
    const i = doc.indexOf(start);
    const j = doc.indexOf(end);
    doc = i >= 0 && j > i ? doc.slice(0, i) + block + doc.slice(j + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
  }
  mkdirSync(dirname(OUTPUT), { recursive: true });
  writeFileSync(OUTPUT, doc);
}

async function main(): Promise<number> {
  const available = scenarioFiles();
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = wanted.filter((w) => !available.includes(w));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark: ${unknown.join(', ')} (available: ${available.join(', ') || 'none'})\n`);
    return 1;
  }
  const scenarios = (await Promise.all((wanted.length ? wanted : available).map(load))).filter((s): s is Scenario => !!s);
  if (scenarios.length === 0) {
    process.stdout.write('no benchmarks yet: add bench/<name>.ts exporting `run()`\n');
    return 0;
  }
  const sections = new Map<string, string>();
  for (const scenario of scenarios) {
    process.stdout.write(`\n== ${scenario.name} ==\n`);
    // One at a time: scenarios measure CPU and must not compete with each other.
    const rows = asRows(await scenario.run());
    const text = rows.length ? table(rows) : '(no results returned)';
    process.stdout.write(`\n${scenario.name} results:\n${text}\n`);
    sections.set(scenario.name, `## ${scenario.name}\n\n${machine()}\n\n${text}\n`);
  }
  writeDoc(sections);
  process.stdout.write(`\nwritten to ${OUTPUT}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

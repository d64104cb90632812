/**
 * The relative-import graph of the TypeScript sources, and its cycles (strongly connected
 * components of more than one file, or a file importing itself). Used by test/import-cycles.test.ts.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** file -> the files it imports (absolute paths) */
export type ImportGraph = Map<string, Set<string>>;

// `import ... from './x.js'`, `export ... from './x.js'`, `import './x.js'`, `import('./x.js')`.
const SPECIFIERS = [
  /\b(?:import|export)\s[^;]*?\sfrom\s*['"](\.{1,2}\/[^'"]+)['"]/g,
  /\bimport\s*['"](\.{1,2}\/[^'"]+)['"]/g,
  /\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
];

/** Every .ts file under dir (not .d.ts), recursively. */
export function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The relative specifiers a source text imports or re-exports (type-only ones included). */
export function relativeSpecifiers(source: string): string[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found = new Set<string>();
  for (const pattern of SPECIFIERS) for (const m of text.matchAll(pattern)) found.add(m[1] as string);
  return [...found];
}

/** The file a specifier names: x.js -> x.ts, x -> x.ts, dir -> dir/index.ts; null when none. */
export function resolveSpecifier(from: string, specifier: string): string | null {
  const base = resolve(dirname(from), specifier);
  const candidates = [
    base.replace(/\.js$/, '.ts'),
    `${base}.ts`,
    join(base, 'index.ts'),
    join(base.replace(/\.js$/, ''), 'index.ts'),
  ];
  return candidates.find((c) => c.endsWith('.ts') && existsSync(c) && statSync(c).isFile()) ?? null;
}

/** The graph of the given files, from their own text (read with `read`, for tests). */
export function importGraph(files: string[], read: (file: string) => string = (f) => readFileSync(f, 'utf8'), resolveFn = resolveSpecifier): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of files) {
    const targets = new Set<string>();
    for (const spec of relativeSpecifiers(read(file))) {
      const target = resolveFn(file, spec);
      if (target) targets.add(target);
    }
    graph.set(file, targets);
  }
  return graph;
}

/** Strongly connected components that are cycles (Tarjan, iterative), each sorted. */
export function importCycles(graph: ImportGraph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  for (const root of graph.keys()) {
    if (index.has(root)) continue;
    const work: Array<{ node: string; edges: string[]; i: number }> = [];
    const enter = (node: string): void => {
      index.set(node, next);
      low.set(node, next);
      next++;
      stack.push(node);
      onStack.add(node);
      work.push({ node, edges: [...(graph.get(node) ?? [])], i: 0 });
    };
    enter(root);
    while (work.length > 0) {
      const frame = work[work.length - 1] as { node: string; edges: string[]; i: number };
      if (frame.i < frame.edges.length) {
        const to = frame.edges[frame.i++] as string;
        if (!index.has(to)) enter(to);
        else if (onStack.has(to)) low.set(frame.node, Math.min(low.get(frame.node) as number, index.get(to) as number));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node) as number, low.get(frame.node) as number));
      if (low.get(frame.node) !== index.get(frame.node)) continue;
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
      } while (member !== frame.node);
      const selfLoop = graph.get(frame.node)?.has(frame.node) ?? false;
      if (component.length > 1 || selfLoop) cycles.push(component.sort());
    }
  }
  return cycles;
}

/** A component as repository-relative paths, for messages and allow-lists. */
export function describeCycle(root: string, cycle: string[]): string[] {
  return cycle.map((f) => relative(root, f));
}

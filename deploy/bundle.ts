/**
 * Bundles the server and the TURN server for the runtime image:
 *   <out>/server.mjs, <out>/sqlite-worker.mjs, <out>/turn.mjs, <out>/healthcheck.mjs, <out>/sqlite-backup.mjs,
 *   <out>/sealed-restore.mjs, <out>/package.json
 *   <out>/node_modules/  only the packages that cannot be bundled (native addons,
 *                        node-turn) and what they require at run time.
 * Usage: node --import tsx deploy/bundle.ts [outDir]   (default: dist)
 * The Dockerfile's build stage runs this; test/deploy-bundle.test.ts runs the result.
 */
import { decode, encode, type SourceMapSegment } from '@jridgewell/sourcemap-codec';
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Packages loaded at run time from node_modules: native code, or code that reads its own files. */
export const RUNTIME_PACKAGES = ['better-sqlite3', 'node-turn', '@sync-suite/udp-relay'];
/**
 * Of those, the ones left to node's resolution. better-sqlite3's JavaScript is bundled and its
 * package ships for the addon only, which apps/server/src/storage/sqlite-open.ts passes to it:
 * resolving its CommonJS files at start cost the storage thread V8's optimising compiler.
 */
const EXTERNAL_PACKAGES = RUNTIME_PACKAGES.filter((name) => name !== 'better-sqlite3');
/** Optional peers that their users try-require; absent in the image, so left unresolved. */
const OPTIONAL_EXTERNALS = ['pg-native', 'bufferutil', 'utf-8-validate'];
/** Install-time dependencies that are never required at run time. */
const INSTALL_ONLY = new Set(['prebuild-install']);

const ENTRIES = {
  server: 'apps/server/src/main.ts',
  // the SQLite storage thread (relay and sealed tables), started by server.mjs from beside it
  'sqlite-worker': 'apps/server/src/storage/sqlite-worker.ts',
  turn: 'apps/turn/src/main.ts',
  healthcheck: 'deploy/healthcheck.ts',
  'sqlite-backup': 'deploy/sqlite-backup.ts',
  // the restore step for sealed rooms (docs/operations.md, "Backup and restore")
  'sealed-restore': 'deploy/sealed-restore.ts',
};

// ESM output still meets CommonJS `require` inside bundled packages: give it a real one.
const BANNER = [
  "import { createRequire as __createRequire } from 'node:module';",
  'const require = __createRequire(import.meta.url);',
].join('\n');

export async function bundle(outDir: string): Promise<void> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await build({
    absWorkingDir: root,
    entryPoints: ENTRIES,
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    banner: { js: BANNER },
    external: [...EXTERNAL_PACKAGES, ...OPTIONAL_EXTERNALS],
    sourcemap: 'linked',
    // With --enable-source-maps (off for the server, on for TURN: deploy/launch.ts) node reads and keeps each
    // bundle's map at load: the original sources inside it made server.mjs.map 6.7 MB and cost
    // about 14 MB RSS at start (docs/benchmarks.md, memory). Without them stack traces still map
    // to the original files and lines. ownSourcesOnly (below) then drops dependency code's segments.
    sourcesContent: false,
    legalComments: 'none',
    // The source text stays in memory for lazy compilation: without comments it is a third smaller,
    // and ASCII-only it is stored one byte per character (one non-ASCII comment doubled it to 7 MB).
    // Identifiers keep their names: logged error types and stack traces stay readable.
    minifyWhitespace: true,
    charset: 'ascii',
    logLevel: 'warning',
  });
  for (const file of readdirSync(outDir).filter((f) => f.endsWith('.mjs.map'))) {
    const path = join(outDir, file);
    writeFileSync(path, JSON.stringify(ownSourcesOnly(JSON.parse(readFileSync(path, 'utf8')) as SourceMap)));
  }
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify({ private: true, type: 'module' }, null, 2)}\n`);
  for (const name of runtimeClosure(RUNTIME_PACKAGES)) copyPackage(name, outDir);
}

/** The fields of a source map esbuild writes (sourcesContent left out). */
export interface SourceMap {
  version: number;
  sources: string[];
  names: string[];
  mappings: string;
}

/**
 * The map with the segments that point into node_modules dropped, and the sources and names
 * only they used: stack frames in our own code (apps/, packages/) still map to file:line, frames
 * in bundled dependencies show the bundle's own position. Most of server.mjs is dependency code,
 * and --enable-source-maps (deploy/launch.ts) holds each map in memory from start: see
 * docs/benchmarks.md (memory) for what each map cost. A dropped segment becomes an unmapped
 * one (generated column only), so that the code it covered is not looked up as the end of the
 * mapped segment before it; a run of them on one line is kept as its first.
 */
export function ownSourcesOnly(map: SourceMap): SourceMap {
  const ours = map.sources.map((source) => !/(^|\/)node_modules\//.test(source));
  const sourceIndex = new Map<number, number>();
  const nameIndex = new Map<number, number>();
  const sources: string[] = [];
  const names: string[] = [];
  const renumber = (index: Map<number, number>, list: string[], from: readonly string[], i: number): number => {
    let j = index.get(i);
    if (j === undefined) {
      j = list.push(from[i] as string) - 1;
      index.set(i, j);
    }
    return j;
  };
  const lines = decode(map.mappings).map((line) => {
    const kept: SourceMapSegment[] = [];
    for (const segment of line) {
      if (segment.length === 1 || !ours[segment[1]]) {
        if (kept.length > 0 && (kept[kept.length - 1] as SourceMapSegment).length === 1) continue;
        kept.push([segment[0]]);
      } else if (segment.length === 4) {
        kept.push([segment[0], renumber(sourceIndex, sources, map.sources, segment[1]), segment[2], segment[3]]);
      } else {
        kept.push([segment[0], renumber(sourceIndex, sources, map.sources, segment[1]), segment[2], segment[3], renumber(nameIndex, names, map.names, segment[4])]);
      }
    }
    return kept;
  });
  return { version: map.version, sources, names, mappings: encode(lines) };
}

/** The packages named and everything they depend on (optional ones only if installed). */
export function runtimeClosure(names: readonly string[]): string[] {
  const seen = new Set<string>();
  const queue = [...names];
  while (queue.length > 0) {
    const name = queue.shift() as string;
    if (seen.has(name) || INSTALL_ONLY.has(name)) continue;
    const manifest = join(root, 'node_modules', name, 'package.json');
    if (!existsSync(manifest)) throw new Error(`runtime package ${name} is not installed`);
    seen.add(name);
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies?: Record<string, string> };
    queue.push(...Object.keys(pkg.dependencies ?? {}));
  }
  return [...seen].sort();
}

/** Copy one package, leaving out sources and build intermediates of native addons. */
function copyPackage(name: string, outDir: string): void {
  const from = join(root, 'node_modules', name);
  cpSync(from, join(outDir, 'node_modules', name), {
    recursive: true,
    // a workspace package (packages/udp-relay) is a symlink in node_modules: copy what it points to
    dereference: true,
    filter: (src) => keep(relative(from, src), existsSync(join(from, 'binding.gyp'))),
  });
}

function keep(rel: string, native: boolean): boolean {
  if (rel === '') return true;
  const parts = rel.split(/[\\/]/);
  if (['test', 'docs', '.github'].includes(parts[0] as string)) return false;
  if (!native) return true;
  // A native addon's C sources and compiler output are not needed once it is built.
  if (parts[0] === 'deps' || parts[0] === 'src') return false;
  if (parts[0] !== 'build') return true;
  // build/ holds compiler output: only build/Release/<addon>.node is loaded.
  if (parts.length === 1) return true;
  if (parts[1] !== 'Release') return false;
  return parts.length === 2 || (parts.length === 3 && rel.endsWith('.node') && !rel.endsWith('test_extension.node'));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = resolve(process.argv[2] ?? join(root, 'dist'));
  await bundle(outDir);
  process.stdout.write(`bundled into ${outDir}\n`);
}

/**
 * Bundle a browser test page (TypeScript) with esbuild: yjs, y-webrtc, y-websocket, lib0 and
 * the workspace packages (@sync-suite/shared, @sync-suite/client) all go into one ESM file.
 *
 * Yjs breaks silently when two copies are loaded ("Yjs was already imported"; instanceof
 * checks fail), so every `yjs` import resolves to the repo root's copy and the bundle is
 * refused if more than one Yjs file made it in.
 */
import { build, type Plugin } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface BundleOptions {
  /** extra compile-time constants, e.g. { __SERVER_URL__: JSON.stringify(url) } */
  define?: Record<string, string>;
  /** keep the bundle readable when debugging a page (default true: smaller, faster to load) */
  minify?: boolean;
}

/** Resolve every bare `yjs` import from the repo root, whoever imports it. */
const oneYjs: Plugin = {
  name: 'one-yjs',
  setup(b) {
    b.onResolve({ filter: /^yjs$/ }, async (args) => {
      if (args.pluginData === 'one-yjs') return undefined;
      const result = await b.resolve('yjs', { kind: args.kind, resolveDir: REPO_ROOT, pluginData: 'one-yjs' });
      return result.errors.length > 0 ? { errors: result.errors } : { path: result.path };
    });
  },
};

/** Returns the bundled JavaScript (ESM) of a page entry; load it with <script type="module">. */
export async function bundlePage(entryTsPath: string, opts: BundleOptions = {}): Promise<string> {
  const result = await build({
    entryPoints: [resolve(REPO_ROOT, entryTsPath)],
    absWorkingDir: REPO_ROOT,
    bundle: true,
    // the workspace's @sync-suite/client from its TypeScript source (packages/client/package.json)
    conditions: ['@sync-suite/source'],
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    minify: opts.minify ?? true,
    sourcemap: 'inline',
    metafile: true,
    logLevel: 'silent',
    define: {
      'process.env.NODE_ENV': '"test"',
      global: 'globalThis',
      ...opts.define,
    },
    plugins: [oneYjs],
  });
  const yjsFiles = Object.keys(result.metafile.inputs).filter((p) => /(^|\/)node_modules\/yjs\//.test(p));
  if (yjsFiles.length > 1) throw new Error(`bundle has ${yjsFiles.length} Yjs copies: ${yjsFiles.join(', ')}`);
  const out = result.outputFiles[0];
  if (!out) throw new Error(`esbuild produced no output for ${entryTsPath}`);
  return out.text;
}

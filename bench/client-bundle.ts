/**
 * Size of the browser bundle of `SyncProvider` (`import { SyncProvider } from '@sync-suite/client'`),
 * minified and gzipped, from the workspace source, with the largest packages in it. The budget
 * (bench/lib/client-bundle.ts) is asserted on the packed tarball by packages/client/test/pack.test.ts.
 *
 *   npm run bench -- client-bundle
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleClient, CLIENT_BUNDLE_BUDGET } from './lib/client-bundle.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

export async function run(): Promise<Array<Record<string, unknown>>> {
  const entries = {
    SyncProvider: "export { SyncProvider } from '@sync-suite/client';",
    'SyncProvider + indexedDbPersistence': "export { SyncProvider, indexedDbPersistence } from '@sync-suite/client';",
  };
  const rows: Array<Record<string, unknown>> = [];
  for (const [what, source] of Object.entries(entries)) {
    const b = await bundleClient(ROOT, source, ['@sync-suite/source']);
    const top = Object.entries(b.byPackage)
      .sort((x, y) => y[1] - x[1])
      .slice(0, 4)
      .map(([name, bytes]) => `${name} ${(bytes / 1000).toFixed(1)}`)
      .join(', ');
    rows.push({
      bundle: what,
      minifiedKB: Number((b.minifiedBytes / 1000).toFixed(1)),
      gzipKB: Number((b.gzipBytes / 1000).toFixed(1)),
      budgetGzipKB: CLIENT_BUNDLE_BUDGET.gzipBytes / 1000,
      nodeBuiltins: b.nodeBuiltins.length,
      largestKB: top,
    });
  }
  return rows;
}

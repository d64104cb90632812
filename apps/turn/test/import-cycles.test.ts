/** No module of apps/ imports itself back through others (type-only imports count too). */
import { describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findCycles, sourceFiles } from '../../../test/helpers/import-graph.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

describe('import cycles', () => {
  it('finds a cycle when there is one', () => {
    const fixture = join(ROOT, 'apps/turn/test/fixtures/cycle');
    expect(findCycles(sourceFiles(fixture), fixture)).toEqual([['a.ts', 'b.ts', 'a.ts']]);
  });

  // apps/server is left to its owners (fanout.ts <-> room.ts in relay/ today); add it here once that knot is cut
  it.each(['apps/turn/src'])('%s has none', (dir) => {
    expect(findCycles(sourceFiles(join(ROOT, dir)), ROOT)).toEqual([]);
  });
});

/**
 * A fresh temporary folder per test, removed after it. Call at the top level of a test file
 * before devicesPerTest(): afterEach hooks run last-registered first, so the folder goes after
 * the device processes that write into it have closed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

/** Returns make(): a new folder named after `prefix`, removed when the test ends. */
export function tempDirPerTest(prefix: string): () => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}

/**
 * A test file's server (one per test) and its device processes, all closed after each test.
 * Call at the top level of a test file: it registers the afterEach.
 */
import { afterEach } from 'vitest';
import { serverPerTest, TEST_SECRET, type ServerPerTest } from '../../../../test/helpers/server.js';
import { PeerProcess } from './peer-process.js';

export interface Devices {
  scope: ServerPerTest;
  /** A device process that mints its tokens with TEST_SECRET; `env` adds to or overrides that. */
  peer(name: string, env?: Record<string, string>): PeerProcess;
}

export function devicesPerTest(): Devices {
  const scope = serverPerTest();
  afterEach(() => scope.close());
  return {
    scope,
    peer(name, env = {}) {
      const p = new PeerProcess(name, { TOKEN_SECRET: TEST_SECRET, ...env });
      scope.track(p);
      return p;
    },
  };
}

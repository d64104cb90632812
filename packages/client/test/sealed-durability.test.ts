/**
 * Sealed durability with a real server process (SQLite): kill -9 of the server twice during a
 * write storm from three devices loses nothing. The devices resend what the server had not
 * acknowledged; a fresh device then loads every write from the server alone.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/helpers/process.js';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { killIfRunning, startServerProcess, stopProcess, type ServerProcess } from '../../../test/fixtures/relay-process.js';
import { PeerProcess } from './helpers/peer-process.js';
import { until } from './helpers/until.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const KEY = randomBytes(32).toString('hex');
const ROOM = 'test-conversation-sealed-durable';

function peer(name: string): PeerProcess {
  const p = new PeerProcess(name, { TOKEN_SECRET: TEST_SECRET, QUIET_TEXTS: '1' });
  cleanup.push(() => p.close());
  return p;
}

async function server(port: number, dataDir: string): Promise<ServerProcess> {
  const p = await startServerProcess(port, {
    STORAGE: 'sqlite',
    DATA_DIR: dataDir,
    AUTH_SECRET: TEST_SECRET,
    PERSIST_FLUSH_MS: '50',
    MAX_MESSAGES_PER_SECOND: '2000',
    SEALED_SNAPSHOT_AFTER: '200',
  });
  cleanup.push(() => killIfRunning(p));
  return p;
}

const pending = async (p: PeerProcess): Promise<number> => ((await p.send('state')) as { sealedPending: number }).sealedPending;

describe('sealed durability', () => {
  it('kill -9 twice during a write storm from three devices loses no write', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sealed-durable-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    let srv = await server(port, dataDir);
    const start = { serverUrl: srv.url, room: ROOM, relayGraceMs: 300, blockWebrtc: true, sealedKey: KEY };
    const devices = [peer('phone'), peer('desktop'), peer('tablet')];
    await Promise.all(devices.map((d) => d.send('start', start)));
    await Promise.all(devices.map((d) => d.waitStatus('relay')));
    await Promise.all(devices.map((d, i) => d.send('storm', { prefix: `${i}:`, everyMs: 7 })));
    const watcher = devices[0] as PeerProcess;
    for (let kill = 0; kill < 2; kill++) {
      // let the server carry a good number of the others' writes, then crash it mid-storm
      const from = watcher.mark;
      await watcher.waitFor((e) => e.ev === 'count' && (e['n'] as number) > 0, 'writes flowing', 20_000, from);
      await watcher.waitFor(() => watcher.mark > from + 150, 'more writes', 20_000);
      expect(await stopProcess(srv, 'SIGKILL')).toBe('SIGKILL');
      const marks = devices.map((d) => d.mark);
      srv = await server(port, dataDir);
      await Promise.all(devices.map((d, i) => d.waitStatus('relay', 'back on the relay', 30_000, marks[i])));
    }
    const written = (await Promise.all(devices.map((d) => d.send('stopStorm')))) as number[];
    const total = written.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(300);
    for (const d of devices) await until(async () => (await pending(d)) === 0, `${d.name} has everything acknowledged`, 30_000);
    for (const d of devices) await d.send('exit');

    // a fresh device, from the server alone
    const fresh = peer('fresh');
    await fresh.send('start', start);
    await fresh.waitFor((e) => e.ev === 'count' && e['n'] === total, `all ${total} writes`, 30_000);
    const texts = ((await fresh.send('state')) as { texts: string[] }).texts;
    const expected = written.flatMap((n, i) => Array.from({ length: n }, (_, k) => `${i}:${k}`));
    expect(new Set(texts)).toEqual(new Set(expected));
    expect(texts.length).toBe(total);
    expect(await stopProcess(srv, 'SIGTERM')).toBe(0);
  });
});

/**
 * The server process is killed (SIGKILL) mid-session and
 * restarted on the same port and data directory. Both devices go relay -> offline -> relay,
 * edits made during the outage are not lost, and every socket either transport opened
 * carried a token from its own getToken() call.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { baseEnv, freePort, listeningPort, runEntry, type RunningProcess } from '../../../test/helpers/process.js';
import { PeerProcess } from './helpers/peer-process.js';

const peers: PeerProcess[] = [];
const servers: RunningProcess[] = [];
let dataDir: string | undefined;
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => s.kill()));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

async function startServerProcess(port: number, dir: string): Promise<RunningProcess> {
  const proc = runEntry('apps/server/src/main.ts', baseEnv({ HOST: '127.0.0.1', PORT: String(port), STORAGE: 'sqlite', DATA_DIR: dir, AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'info' }));
  servers.push(proc);
  await listeningPort(proc);
  return proc;
}

interface PeerState {
  texts: string[];
  sockets: Array<{ path: string; sub: string | undefined }>;
  tokenCalls: unknown[];
}

it('server killed and restarted: relay -> offline -> relay, no edit lost, a fresh token per socket', async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'client-restart-'));
  const port = await freePort();
  let server = await startServerProcess(port, dataDir);
  const serverUrl = `http://127.0.0.1:${port}`;
  const room = 'test-conversation-restart';
  const [a, b] = ['phone', 'desktop'].map((name) => {
    const p = new PeerProcess(name, { TOKEN_SECRET: TEST_SECRET });
    peers.push(p);
    return p;
  }) as [PeerProcess, PeerProcess];
  const start = { serverUrl, room, blockWebrtc: true, relayGraceMs: 500 };
  await Promise.all([a.send('start', start), b.send('start', start)]);
  await Promise.all([a.waitStatus('relay'), b.waitStatus('relay')]);
  await a.send('push', { text: 'before the crash' });
  await b.waitTexts(['before the crash']);

  const [markA, markB] = [a.mark, b.mark];
  await server.kill();
  await Promise.all([a.waitStatus('offline', 'offline after the kill', 20_000, markA), b.waitStatus('offline', 'offline after the kill', 20_000, markB)]);
  await a.send('push', { text: 'offline edit from phone' });
  await b.send('push', { text: 'offline edit from desktop' });

  server = await startServerProcess(port, dataDir);
  const all = ['before the crash', 'offline edit from phone', 'offline edit from desktop'];
  await Promise.all([a.waitStatus('relay', 'relay again', 20_000, a.mark), b.waitStatus('relay', 'relay again', 20_000, b.mark)]);
  await Promise.all([a.waitTexts(all), b.waitTexts(all)]);

  // The server's storage has it all: a device that was never online with the others gets it.
  const c = new PeerProcess('tablet', { TOKEN_SECRET: TEST_SECRET });
  peers.push(c);
  await c.send('start', { serverUrl, room, relayGraceMs: 500 });
  await c.waitTexts(all);

  for (const p of [a, b]) {
    const state = (await p.send('state')) as PeerState;
    const subs = state.sockets.map((s) => s.sub);
    // every socket, first attempts and reconnects, on /signal and on /relay, had its own token
    expect(subs.every((s) => typeof s === 'string')).toBe(true);
    expect(new Set(subs).size).toBe(subs.length);
    expect(state.sockets.filter((s) => s.path === '/signal').length).toBeGreaterThanOrEqual(2);
    expect(state.sockets.filter((s) => s.path === `/relay/${room}`).length).toBeGreaterThanOrEqual(2);
    expect(state.tokenCalls.length).toBeGreaterThanOrEqual(state.sockets.length);
  }
});

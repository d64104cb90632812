/**
 * The `coturn` profile's configuration, run with the real coturn on loopback: the same
 * deploy/coturn/entrypoint.sh and turnserver.conf the container uses. Credentials made
 * the way our server makes them (createTurnCredentials) are accepted for TURN_SECRET and
 * TURN_SECRET_PREVIOUS, refused for any other secret, and the secret is not on the
 * command line.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTurnCredentials } from '@sync-suite/shared/node';
import { startLogged, type LoggedProcess } from '../deploy/ci/process.js';
import { freeUdpPort } from './helpers/process.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'sync-coturn-'));
const SECRET = 'coturn-current-secret-0123';
const PREVIOUS = 'coturn-previous-secret-4567';
let coturn: LoggedProcess | undefined;
let peer: LoggedProcess | undefined;
let turnPort = 0;
let peerPort = 0;

/** turnutils_uclient allocating and echoing 20 packets through coturn; its exit code. */
async function allocate(username: string, password: string): Promise<number> {
  const args = ['-L', '127.0.0.1', '-e', '127.0.0.1', '-r', String(peerPort), '-u', username, '-w', password];
  try {
    await run('turnutils_uclient', [...args, '-p', String(turnPort), '-n', '20', '-m', '1', '-l', '100', '-c', '127.0.0.1'], { timeout: 15_000 });
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

beforeAll(async () => {
  [turnPort, peerPort] = [await freeUdpPort(), await freeUdpPort()];
  const relayBase = 50_000 + Math.floor(Math.random() * 5_000);
  coturn = startLogged('sh', [join(root, 'deploy/coturn/entrypoint.sh')], {
    cwd: work,
    env: {
      PATH: process.env['PATH'],
      TMPDIR: work,
      COTURN_BASE_CONF: join(root, 'deploy/coturn/turnserver.conf'),
      TURN_SECRET: SECRET,
      TURN_SECRET_PREVIOUS: PREVIOUS,
      TURN_PORT: String(turnPort),
      TURN_LISTEN_IP: '127.0.0.1',
      TURN_RELAY_IP: '127.0.0.1',
      TURN_MIN_PORT: String(relayBase),
      TURN_MAX_PORT: String(relayBase + 100),
      TURN_ALLOW_LOOPBACK_PEERS: 'true',
    },
  });
  peer = startLogged('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)], { env: { PATH: process.env['PATH'] } });
  await coturn.waitFor((l) => /Total General servers/.test(String(l['msg'])), 15_000);
});

afterAll(async () => {
  await Promise.all([coturn?.stop(), peer?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

describe('coturn profile with our TURN REST credentials', () => {
  it('accepts credentials signed with TURN_SECRET and with TURN_SECRET_PREVIOUS', async () => {
    const current = createTurnCredentials(SECRET, 'device-a', 600);
    expect(await allocate(current.username, current.credential)).toBe(0);
    const previous = createTurnCredentials(PREVIOUS, 'device-b', 600);
    expect(await allocate(previous.username, previous.credential)).toBe(0);
  });

  it('refuses credentials signed with another secret, or expired', async () => {
    const wrong = createTurnCredentials('some-other-secret-8910', 'device-c', 600);
    expect(await allocate(wrong.username, wrong.credential)).not.toBe(0);
    const expired = createTurnCredentials(SECRET, 'device-d', 60, Math.floor(Date.now() / 1000) - 3600);
    expect(await allocate(expired.username, expired.credential)).not.toBe(0);
  });

  it('keeps the secret off the command line, in a private file', async () => {
    const pid = coturn?.child.pid as number;
    const { stdout } = await run('ps', ['-o', 'args=', '--ppid', String(pid), '-p', String(pid)]);
    expect(stdout).toContain('turnserver -c');
    expect(stdout).not.toContain(SECRET);
    const conf = readdirSync(work).find((f) => f.startsWith('turnserver.'));
    const { stdout: mode } = await run('stat', ['-c', '%a', join(work, conf as string)]);
    expect(mode.trim()).toBe('600');
  });
});

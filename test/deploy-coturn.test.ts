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
import { answersStun, privateCoturnState } from './helpers/coturn.js';
import { freeUdpPort, runProcess, type RunningProcess } from './helpers/process.js';

const run = promisify(execFile);
/** coturn logs plain text: runProcess keeps such a line as { text } */
const lineText = (l: Record<string, unknown>): string => String(l['text'] ?? l['msg']);
const root = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'sync-coturn-'));
const state = privateCoturnState();
const SECRET = 'coturn-current-secret-0123456789abcd';
const PREVIOUS = 'coturn-previous-secret-4567-0123456789';
let coturn: RunningProcess | undefined;
let peer: RunningProcess | undefined;
let turnPort = 0;
let peerPort = 0;

interface UclientRun {
  /** exit code; -1 when killed by the timeout */
  code: number;
  output: string;
}

/** turnutils_uclient allocating and echoing 5 packets through coturn. */
async function allocate(username: string, password: string): Promise<UclientRun> {
  const args = ['-L', '127.0.0.1', '-e', '127.0.0.1', '-r', String(peerPort), '-u', username, '-w', password];
  try {
    const { stdout, stderr } = await run('turnutils_uclient', [...args, '-p', String(turnPort), '-n', '5', '-m', '1', '-l', '100', '-c', '127.0.0.1'], { timeout: 20_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** What to show when an expectation fails: the client's output and coturn's last lines. */
function evidence(r: UclientRun): string {
  const log = (coturn?.lines ?? []).slice(-30).map(lineText).join('\n');
  return `uclient exited ${r.code}:\n${r.output.slice(-1500)}\ncoturn log:\n${log}`;
}

beforeAll(async () => {
  [turnPort, peerPort] = [await freeUdpPort(), await freeUdpPort()];
  const relayBase = 50_000 + Math.floor(Math.random() * 5_000);
  coturn = runProcess(
    'sh',
    [join(root, 'deploy/coturn/entrypoint.sh'), ...state.args],
    {
      PATH: process.env['PATH'] ?? '',
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
    { cwd: work },
  );
  peer = runProcess('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)], { PATH: process.env['PATH'] ?? '' });
  await coturn.waitForLine((l) => /Total General servers/.test(lineText(l)), 15_000);
  await Promise.all([answersStun(turnPort, { timeoutMs: 10_000 }), answersStun(peerPort, { timeoutMs: 10_000 })]);
});

afterAll(async () => {
  await Promise.all([coturn?.stop(), peer?.stop()]);
  rmSync(work, { recursive: true, force: true });
  state.remove();
});

describe('coturn profile with our TURN REST credentials', () => {
  it('accepts credentials signed with TURN_SECRET and with TURN_SECRET_PREVIOUS', async () => {
    for (const [secret, sub] of [[SECRET, 'device-a'], [PREVIOUS, 'device-b']] as const) {
      const c = createTurnCredentials(secret, sub, 600);
      const r = await allocate(c.username, c.credential);
      expect(r.code, evidence(r)).toBe(0);
      expect(r.output, evidence(r)).toMatch(/tot_send_msgs=5, tot_recv_msgs=5/);
    }
  });

  it('refuses credentials signed with another secret, or expired', async () => {
    const wrong = createTurnCredentials('some-other-secret-8910', 'device-c', 600);
    const expired = createTurnCredentials(SECRET, 'device-d', 60, Math.floor(Date.now() / 1000) - 3600);
    for (const c of [wrong, expired]) {
      const r = await allocate(c.username, c.credential);
      // A refusal is an answer (401), not silence: uclient gives up at once, not on the timeout.
      expect(r.code, evidence(r)).toBeGreaterThan(0);
      expect(r.output, evidence(r)).toMatch(/Cannot complete Allocation/);
    }
    expect(coturn?.lines.some((l) => lineText(l).includes(`<${wrong.username}>`))).toBe(true);
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

/**
 * `npm start`: server and TURN together. Ctrl-C stops both gracefully (exit 0); when one
 * dies, the other is stopped and the exit code is the dead one's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { baseEnv, exitWithin, freePort, freeUdpPort, listeningPort, runProcess, type RunningProcess } from './helpers/process.js';

let proc: RunningProcess | undefined;
let dataDir: string | undefined;
afterEach(async () => {
  // scripts/start.ts stops server and TURN on SIGTERM; they run in their own process groups, so
  // killing start.ts (or its group) alone would leave them running after a test that ends early
  await proc?.stop('SIGTERM', 30_000);
  await proc?.kill();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  proc = undefined;
  dataDir = undefined;
});

async function startSuite(command: 'npm' | 'node', extra: Record<string, string> = {}, unset: string[] = []): Promise<RunningProcess> {
  dataDir = mkdtempSync(join(tmpdir(), 'sync-start-'));
  const env = baseEnv({
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    TURN_LISTEN_IP: '127.0.0.1',
    TURN_RELAY_IP: '127.0.0.1',
    TURN_PORT: String(await freeUdpPort()),
    TURN_METRICS_HOST: '127.0.0.1',
    TURN_METRICS_PORT: '0',
    ...extra,
  });
  for (const name of unset) delete env[name];
  const args = command === 'npm' ? ['start'] : ['--import', 'tsx', 'scripts/start.ts'];
  proc = runProcess(command, args, env, { detached: true });
  return proc;
}

/** Both processes up: their ports and pids, read from their logs. */
async function bothUp(p: RunningProcess) {
  const serverPort = await listeningPort(p, 30_000);
  const turnLine = await p.waitForLine((l) => l['name'] === 'turn' && typeof l['metricsPort'] === 'number', 30_000);
  const serverLine = p.lines.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('Server listening at'));
  const server = { port: serverPort, pid: Number(serverLine?.['pid']) };
  const turn = { port: Number(turnLine['metricsPort']), pid: Number(turnLine['pid']) };
  expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
  expect((await fetch(`http://127.0.0.1:${turn.port}/healthz`)).status).toBe(200);
  return { server, turn };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start', () => {
  it('runs server and TURN; Ctrl-C stops both gracefully', async () => {
    const p = await startSuite('npm');
    const { server, turn } = await bothUp(p);
    // What a terminal does on Ctrl-C: SIGINT to the whole foreground process group.
    process.kill(-(p.child.pid as number), 'SIGINT');
    const exit = await exitWithin(p, 30_000);
    // npm itself reports an interrupted script as SIGINT (130), whatever the script's exit code;
    // scripts/start.ts's own code is checked in the next test.
    expect(exit.signal === 'SIGINT' || exit.code === 130 || exit.code === 0).toBe(true);
    expect(alive(server.pid)).toBe(false);
    expect(alive(turn.pid)).toBe(false);
    const stopping = p.lines.filter((l) => l['msg'] === 'shutting down').map((l) => l['pid']);
    expect(stopping.sort()).toEqual([server.pid, turn.pid].sort());
    expect(p.lines.some((l) => l['pid'] === server.pid && l['msg'] === 'stopped')).toBe(true);
    expect(p.stderr()).not.toMatch(/exited .*stopping the rest/);
  });

  it('scripts/start.ts exits 0 after a clean Ctrl-C', async () => {
    const p = await startSuite('node');
    const { server, turn } = await bothUp(p);
    process.kill(-(p.child.pid as number), 'SIGINT');
    expect(await exitWithin(p, 30_000)).toEqual({ code: 0, signal: null });
    expect(alive(server.pid)).toBe(false);
    expect(alive(turn.pid)).toBe(false);
    // Each child got exactly one stop signal (they are in their own process group).
    expect(p.lines.filter((l) => l['msg'] === 'shutting down').map((l) => l['signal'])).toEqual(['SIGTERM', 'SIGTERM']);
  });

  it('when TURN is killed, stops the server and exits with its code (128 + 9)', async () => {
    const p = await startSuite('node');
    const { server, turn } = await bothUp(p);
    process.kill(turn.pid, 'SIGKILL');
    expect(await exitWithin(p, 30_000)).toEqual({ code: 137, signal: null });
    expect(alive(server.pid)).toBe(false);
    // The server was stopped gracefully, not killed.
    expect(p.lines.some((l) => l['pid'] === server.pid && l['msg'] === 'stopped')).toBe(true);
    expect(p.stderr()).toMatch(/turn exited \(SIGKILL\); stopping the rest/);
  });

  it('when the server fails at start-up, stops TURN and exits 1', async () => {
    const p = await startSuite('node', { PORT: 'not-a-port' });
    expect(await exitWithin(p, 30_000)).toEqual({ code: 1, signal: null });
    expect(p.stderr()).toMatch(/invalid configuration: PORT: /);
    expect(p.stderr()).toMatch(/server exited \(1\); stopping the rest/);
  });

  // With auth off anyone who reaches the server gets TURN credentials, and loopback peers let a
  // TURN client reach this host's own services: such a run listens on loopback only.
  it('without HOST and TURN_LISTEN_IP, listens on loopback only and says so', async () => {
    const p = await startSuite('node', {}, ['HOST', 'TURN_LISTEN_IP', 'TURN_RELAY_IP', 'TURN_METRICS_HOST']);
    await bothUp(p);
    // fastify logs one line per address it listens on (every interface's for 0.0.0.0)
    const server = p.lines.filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('Server listening at')).map((l) => l['msg']);
    expect(server).toEqual([expect.stringMatching(/^Server listening at http:\/\/127\.0\.0\.1:\d+$/)]);
    const turn = p.lines.find((l) => l['msg'] === 'turn server listening (UDP)');
    expect(turn?.['listen']).toMatch(/^127\.0\.0\.1:\d+$/);
    // loopback peers are what the one-host run needs (the developer's own browsers and TURN)
    expect(turn?.['deniedPeers']).not.toContain('127.0.0.0/8');
    expect(p.stderr()).toMatch(/HOST=127\.0\.0\.1 TURN_LISTEN_IP=127\.0\.0\.1 TURN_METRICS_HOST=127\.0\.0\.1/);
  });

  it('with TURN_LISTEN_IP set, leaves loopback peers denied unless TURN_ALLOW_LOOPBACK_PEERS is set too', async () => {
    const p = await startSuite('node');
    await bothUp(p);
    const turn = p.lines.find((l) => l['msg'] === 'turn server listening (UDP)');
    expect(turn?.['deniedPeers']).toContain('127.0.0.0/8');
    expect(p.stderr()).toMatch(/TURN_LISTEN_IP is set: loopback peers stay denied/);
  });

  it('points the status page at the TURN server it starts (not "not configured")', async () => {
    // A fixed metrics port, as an operator has it (the default 9641 may be taken on a shared machine).
    const metricsPort = await freePort();
    const p = await startSuite('node', { TURN_METRICS_PORT: String(metricsPort) });
    const { server } = await bothUp(p);
    const res = await fetch(`http://127.0.0.1:${server.port}/status.json`);
    const status = (await res.json()) as { turn: unknown };
    expect(status.turn).toMatchObject({ reachable: true, allocations: 0 });
    process.kill(-(p.child.pid as number), 'SIGINT');
    expect(await exitWithin(p, 30_000)).toEqual({ code: 0, signal: null });
  });

  it('with METRICS_TOKEN: TURN /metrics needs it, and the status page sends it (apps/server/src/status/turn-probe.ts)', async () => {
    const token = 'start-metrics-token-01';
    const p = await startSuite('node', { METRICS_TOKEN: token, TURN_METRICS_PORT: String(await freePort()) });
    const { server, turn } = await bothUp(p);
    expect((await fetch(`http://127.0.0.1:${turn.port}/metrics`)).status).toBe(401);
    const res = await fetch(`http://127.0.0.1:${server.port}/status.json`, { headers: { authorization: `Bearer ${token}` } });
    const status = (await res.json()) as { turn: unknown };
    expect(status.turn).toMatchObject({ reachable: true, allocations: 0 });
    process.kill(-(p.child.pid as number), 'SIGINT');
    expect(await exitWithin(p, 30_000)).toEqual({ code: 0, signal: null });
  });
});

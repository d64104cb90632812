/**
 * A process whose stdout is not read (a stalled log collector, a full pipe) keeps serving and
 * still stops on SIGTERM: log lines it cannot write are held up to LOG_HOLD_BYTES and then
 * dropped and counted, never waited for; and one whose stdout reader is gone (EPIPE) exits on
 * SIGTERM too (packages/shared/src/logging/stdout-destination.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LOG_HOLD_BYTES } from '../packages/shared/src/logging/stdout-destination.js';
import { baseEnv, exitWithin, freeUdpPort, listeningPort, runEntry, type RunningProcess } from './helpers/process.js';
import { withTimeout } from './helpers/timeout.js';

let proc: RunningProcess | undefined;
afterEach(async () => {
  await proc?.kill();
  proc = undefined;
});

/** GET `url` and its status, failing after 5 s (a server stalled in a log write never answers). */
async function status(url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  return res.status;
}

describe('a server whose stdout nobody reads', () => {
  it('keeps answering, drops and counts what it cannot hold, and exits on SIGTERM', async () => {
    proc = runEntry('apps/server/src/main.ts', baseEnv({ HOST: '127.0.0.1', PORT: '0', STORAGE: 'memory', LOG_LEVEL: 'info', METRICS_TOKEN: 'log-stall-metrics' }));
    const port = await listeningPort(proc);
    const base = `http://127.0.0.1:${port}`;
    proc.child.stdout?.pause(); // from here the pipe fills: the reader has stalled

    // Each 404 logs its long URL twice at info (incoming request, route not found): about 1.7x LOG_HOLD_BYTES in all.
    const path = `/not-here-${'x'.repeat(4000)}`;
    const requests = Math.ceil((2.5 * LOG_HOLD_BYTES) / (3 * path.length));
    for (let i = 0; i < requests; i += 25) {
      const batch = Array.from({ length: Math.min(25, requests - i) }, (_, j) => status(`${base}${path}-${i + j}`));
      expect(new Set(await Promise.all(batch))).toEqual(new Set([404]));
    }
    expect(await status(`${base}/healthz`)).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer log-stall-metrics' }, signal: AbortSignal.timeout(5_000) })).text();
    const dropped = Number(/^sync_log_lines_dropped_total (\d+)/m.exec(metrics)?.[1]);
    expect(dropped).toBeGreaterThan(0);

    proc.child.kill('SIGTERM');
    const exit = await exitWithin(proc, 15_000);
    expect(exit.code).toBe(0);

    // What reached the pipe is whole lines, in order: the held ones were never torn.
    const reader = proc.child.stdout;
    const rest = new Promise<void>((resolve) => reader?.once('end', resolve));
    reader?.resume();
    await withTimeout(rest, 10_000, 'the rest of stdout');
    // Only the last line may be cut short: one partly written when the pipe filled keeps its rest
    // held, and the exit flush (one try, never a wait) cannot write it while nobody reads.
    const lines = proc.stdout().split('\n');
    const last = lines.pop() as string; // '' when the text ends with a newline
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
    if (last !== '') expect(last[0]).toBe('{');
  });

  it('a TURN process whose stdout reader is gone exits on SIGTERM', async () => {
    const env = { TURN_SECRET: 'log-stall-turn-secret-0123456789ab', TURN_LISTEN_IP: '127.0.0.1', TURN_RELAY_IP: '127.0.0.1', TURN_METRICS_HOST: '127.0.0.1' };
    proc = runEntry('apps/turn/src/main.ts', baseEnv({ ...env, TURN_PORT: String(await freeUdpPort()), TURN_METRICS_PORT: '0', LOG_LEVEL: 'info' }));
    await proc.waitForLine((l) => typeof l['listen'] === 'string');
    proc.child.stdout?.destroy(); // the reader is gone (`| head -1`): every later write fails with EPIPE
    proc.child.kill('SIGTERM'); // its shutdown lines are refused; the exit must not wait for them
    const exit = await exitWithin(proc, 15_000);
    expect(exit.code).toBe(0);
  });
});

/**
 * Sealed fan-out: ROOMS rooms x DEVICES raw clients on our /sealed (a server process, SQLite),
 * each sending opaque envelopes at a fixed pace; every entry arriving at another device of the
 * room is one delivery. Server CPU per delivery from /proc, as in the relay bench.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/process.js';
import { cpuTimes } from '../lib/cpu-times.js';
import { percentile } from '../lib/percentile.js';
import { ROOT } from '../relay/targets.js';
import type { BenchOptions, BenchResult } from './paced-run.js';
import { BenchSealedClient } from './raw-client.js';

const ENVELOPE_BYTES = 120; // about a sealed chat message: 46 bytes of envelope around a small update

export async function runSealedFanout(o: BenchOptions): Promise<BenchResult> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-sealed-'));
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'apps/server/src/main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(port), STORAGE: 'sqlite', DATA_DIR: dataDir, LOG_LEVEL: 'warn', MAX_MESSAGES_PER_SECOND: '100000', ROOM_TYPES: 'conversation', SEALED_SNAPSHOT_AFTER: '1000000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await waitListening(proc, port);
    const expected = o.rooms * o.clients * o.updates * (o.clients - 1);
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    let delivered = 0;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((r) => (done = r));
    const clients: BenchSealedClient[] = [];
    for (let r = 0; r < o.rooms; r++) {
      for (let i = 0; i < o.clients; i++) {
        const c = new BenchSealedClient(`ws://127.0.0.1:${port}/sealed/bench-conversation-${r}`, (m) => {
          if (m.type !== 'entry') return;
          const t = sentAt.get(Buffer.from(m.envelope.subarray(0, 8)).toString('hex'));
          if (t === undefined) return; // warm-up
          latencies.push(performance.now() - t);
          if (++delivered === expected) done();
        });
        await c.join();
        clients.push(c);
      }
    }
    let cpu0 = cpuTimes(proc.pid as number);
    let t0 = performance.now();
    let tick = 0;
    const timer = setInterval(() => {
      if (tick >= o.warmup + o.updates) return clearInterval(timer);
      if (tick === o.warmup) {
        cpu0 = cpuTimes(proc.pid as number);
        t0 = performance.now();
      }
      for (const c of clients) {
        const env = randomBytes(ENVELOPE_BYTES);
        if (tick >= o.warmup) sentAt.set(env.subarray(0, 8).toString('hex'), performance.now());
        c.update(env);
      }
      tick++;
    }, o.intervalMs);
    await Promise.race([finished, new Promise<void>((r) => setTimeout(r, 120_000).unref())]);
    clearInterval(timer);
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuTimes(proc.pid as number);
    for (const c of clients) c.close();
    latencies.sort((a, b) => a - b);
    const [user, sys] = [cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]];
    return {
      server: 'sync-suite /sealed (sqlite)',
      delivered,
      expected,
      seconds,
      updatesPerSecond: delivered / seconds,
      p50ms: percentile(latencies, 0.5),
      p99ms: percentile(latencies, 0.99),
      cpuUsPerDelivery: ((user + sys) * 1e6) / Math.max(1, delivered),
      sysUsPerDelivery: (sys * 1e6) / Math.max(1, delivered),
    };
  } finally {
    proc.kill('SIGKILL');
    await once(proc, 'exit').catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Waits until the server accepts TCP connections (its start-up line is below LOG_LEVEL=warn). */
async function waitListening(proc: ReturnType<typeof spawn>, port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error('sealed bench server exited during start');
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error('sealed bench server did not start');
    await new Promise((r) => setTimeout(r, 100)); // start-up has no event to subscribe to from outside
  }
}

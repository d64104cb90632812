/**
 * Sealed fan-out: ROOMS rooms x DEVICES raw clients on our /sealed (the production bundle,
 * SQLite), sending opaque envelopes at the relay bench's fixed rate (bench/relay/measure.ts: a
 * warm-up, then one measured phase paced by bench/lib/pace.ts); every entry arriving at another
 * device of the room is one delivery. Server CPU per delivery from /proc, as in the relay bench.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRoomToken } from '@sync-suite/shared';
import { freePort } from '../../test/helpers/process.js';
import { BENCH_AUTH_SECRET, BENCH_ONE_SUB_ENV, productionBundle, serverNodeFlags } from '../lib/bundle.js';
import { cpuTimes } from '../lib/cpu-times.js';
import { listening } from '../lib/listening.js';
import { pace } from '../lib/pace.js';
import { phaseResult, type PhaseResult, type RelayPlan } from '../relay/measure.js';
import { BenchSealedClient } from './raw-client.js';

const ENVELOPE_BYTES = 120; // about a sealed chat message: 46 bytes of envelope around a small update
export const SEALED_SERVER = 'sync-suite /sealed (sqlite)';

/** One phase's count of each envelope's arrival at each other device of its room, with its latency. */
function countDeliveries(expected: number) {
  const sent = new Map<string, number>();
  const key = (envelope: Uint8Array): string => Buffer.from(envelope.subarray(0, 8)).toString('hex');
  const latencies: number[] = [];
  let delivered = 0;
  let finish: () => void = () => undefined;
  return {
    expected,
    latencies,
    delivered: () => delivered,
    done: new Promise<void>((r) => (finish = r)),
    sentNow: (envelope: Uint8Array) => void sent.set(key(envelope), performance.now()),
    arrived(envelope: Uint8Array): void {
      const t = sent.get(key(envelope));
      if (t === undefined) return; // another phase's
      latencies.push(performance.now() - t);
      if (++delivered === expected) finish();
    },
  };
}

function startServer(bundleDir: string, port: number, dataDir: string): ChildProcess {
  return spawn(process.execPath, [...serverNodeFlags(), join(bundleDir, 'server.mjs')], {
    cwd: bundleDir,
    env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(port), STORAGE: 'sqlite', DATA_DIR: dataDir, LOG_LEVEL: 'warn', MAX_MESSAGES_PER_SECOND: '100000', ROOM_TYPES: 'conversation', SEALED_SNAPSHOT_AFTER: '1000000', AUTH_SECRET: BENCH_AUTH_SECRET, ...BENCH_ONE_SUB_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The warm-up, then the measured phase at `plan.fixedRate` deliveries per second. */
export async function runSealedFanout(plan: RelayPlan): Promise<{ server: string; fixed: PhaseResult }> {
  const [bundleDir, port] = await Promise.all([productionBundle(), freePort()]);
  const token = await createRoomToken(BENCH_AUTH_SECRET, { sub: 'bench', rooms: ['bench-conversation-*'], ttlSeconds: 3600 });
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-sealed-'));
  const proc = startServer(bundleDir, port, dataDir);
  try {
    await listening(proc, port);
    let deliveries = countDeliveries(0);
    const clients: BenchSealedClient[] = [];
    // In batches: a thousand handshakes at once would time out on a loaded machine.
    for (let r = 0; r < plan.rooms; r++) {
      const room = Array.from({ length: plan.clients }, () => new BenchSealedClient(`ws://127.0.0.1:${port}/sealed/bench-conversation-${r}?token=${token}`, (m) => m.type === 'entry' && deliveries.arrived(m.envelope)));
      await Promise.all(room.map((c) => c.join()));
      clients.push(...room);
    }
    const phase = async (seconds: number): Promise<PhaseResult> => {
      const receivers = plan.clients - 1;
      const sendsPerSecond = plan.fixedRate / receivers;
      const envelopes = Array.from({ length: Math.round(sendsPerSecond * seconds) }, () => randomBytes(ENVELOPE_BYTES));
      deliveries = countDeliveries(envelopes.length * receivers);
      const { done } = deliveries;
      const cpu0 = cpuTimes(proc.pid as number);
      const t0 = performance.now();
      await pace(sendsPerSecond, seconds, (n) => {
        const envelope = envelopes[n];
        if (!envelope) return;
        deliveries.sentNow(envelope);
        clients[n % clients.length]?.update(envelope);
      });
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise<void>((r) => (grace = setTimeout(r, 2000 + 100 * seconds)))]);
      clearTimeout(grace);
      const elapsed = (performance.now() - t0) / 1000;
      const cpu1 = cpuTimes(proc.pid as number);
      const { expected, latencies } = deliveries;
      return phaseResult({ rate: plan.fixedRate, delivered: deliveries.delivered(), expected, elapsed, latencies, cpu: [cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]], p99LimitMs: plan.p99LimitMs });
    };
    await phase(plan.warmupSeconds);
    const fixed = await phase(plan.seconds);
    for (const c of clients) c.close();
    return { server: SEALED_SERVER, fixed };
  } finally {
    proc.kill('SIGKILL');
    await once(proc, 'exit').catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

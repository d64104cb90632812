/**
 * Drives a live relay with RelayInputs: `workers` raw connections in parallel, each sending one
 * input and waiting until it was processed (the answer to a presence query that follows it, or
 * the close it caused), so every input counts. Documents go to scratch rooms; everything else
 * also to the honest rooms. Measures the event-loop stall (perf_hooks) while it runs.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { encodeRelayMessage, writeRelayQueryAwareness } from '@sync-suite/shared';
import { withTimeout } from '../../../../test/helpers/timeout.js';
import { RawClient } from '../../../../test/fixtures/relay-clients.js';
import { EPOCH, RelayInputs, rng } from './relay-inputs.js';

export interface FuzzOptions {
  wsUrl: string;
  iterations: number;
  seed: number;
  honestRooms: string[];
  scratchRooms: string[];
  honestIds: () => number[];
  workers?: number;
  /** called every 1,000 inputs */
  progress?: (done: number) => void;
}

export interface FuzzReport {
  inputs: number;
  byKind: Record<string, number>;
  /** close codes of attacker connections, by room class: `scratch:4413`, `honest:4400` */
  closes: Record<string, number>;
  maxStallMs: number;
  durationMs: number;
  /** longest time to build one input, and to have one processed, by kind (ms) */
  slowestBuild: Record<string, number>;
  slowestProcess: Record<string, number>;
}

const QUERY = encodeRelayMessage((e) => writeRelayQueryAwareness(e));

export async function runRelayFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const inputs = new RelayInputs(o.seed, o.honestIds);
  const pickRoom = rng(o.seed ^ 0x5bd1e995);
  const report: FuzzReport = { inputs: 0, byKind: {}, closes: {}, maxStallMs: 0, durationMs: 0, slowestBuild: {}, slowestProcess: {} };
  const slowest = (table: Record<string, number>, kind: string, ms: number): void => {
    table[kind] = Math.max(table[kind] ?? 0, Math.round(ms));
  };
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const started = Date.now();
  let issued = 0;

  const worker = async (): Promise<void> => {
    const conns = new Map<string, RawClient>();
    // one close promise per connection (RawClient.closed() adds listeners on every call)
    const closes = new WeakMap<RawClient, Promise<unknown>>();
    try {
      while (issued < o.iterations) {
        issued++;
        const built = performance.now();
        const input = inputs.next();
        slowest(report.slowestBuild, input.kind, performance.now() - built);
        const honest = !input.mutates && pickRoom() < 0.5;
        const list = honest ? o.honestRooms : o.scratchRooms;
        const base = list[Math.floor(pickRoom() * list.length)] as string;
        // scratch rooms rotate with the generator's documents; old ones unload (ROOM_IDLE_MS)
        const epoch = Math.floor(issued / EPOCH);
        const room = honest ? base : `${base}-e${epoch}`;
        for (const [name, old] of conns) {
          if (!name.endsWith(`-e${epoch}`) && !o.honestRooms.includes(name)) (old.close(), conns.delete(name));
        }
        let c = conns.get(room);
        if (c && c.ws.readyState !== c.ws.OPEN) {
          await withTimeout(closes.get(c) as Promise<unknown>, 20_000, 'close'); // closed by its previous input
          c = undefined;
        }
        if (!c) {
          c = await RawClient.connect(`${o.wsUrl}/relay/${room}`, 20_000);
          conns.set(room, c);
          const conn = c;
          closes.set(c, new Promise((resolve) => conn.ws.once('close', resolve)));
          await c.next((m) => m.type === 'sync-step1', 20_000, 'step 1');
        }
        c.messages.length = 0; // only what follows this input is looked at
        const sent = performance.now();
        c.send(input.frame);
        c.send(QUERY);
        const conn = c;
        await withTimeout(
          Promise.race([closes.get(conn) as Promise<unknown>, conn.next((m) => m.type === 'awareness', 60_000, `answer to ${input.kind}`)]),
          60_000,
          `input ${input.kind} processed`,
        );
        slowest(report.slowestProcess, input.kind, performance.now() - sent);
        report.inputs++;
        report.byKind[input.kind] = (report.byKind[input.kind] ?? 0) + 1;
        if (conn.closeCode !== null) {
          const key = `${honest ? 'honest' : 'scratch'}:${conn.closeCode}`;
          report.closes[key] = (report.closes[key] ?? 0) + 1;
        }
        if (report.inputs % 1000 === 0) o.progress?.(report.inputs);
      }
    } finally {
      for (const c of conns.values()) c.close();
    }
  };

  try {
    await Promise.all(Array.from({ length: o.workers ?? 8 }, () => worker()));
  } finally {
    delay.disable();
    inputs.destroy();
  }
  report.maxStallMs = delay.max / 1e6;
  report.durationMs = Date.now() - started;
  return report;
}

/**
 * For running a real coturn (or any STUN/TURN server) beside tests and benchmarks on loopback.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { randomFillSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CoturnState {
  /** turnserver arguments: its own pid file and user database */
  args: string[];
  /** removes both */
  remove(): void;
}

/**
 * coturn's defaults, /var/run/turnserver.pid and /var/lib/turn/turndb, are shared with any
 * other coturn on the host (another test file running at the same time). The database goes in
 * memory: coturn creates its schema on the first authentication, seconds of fsync on a busy disk.
 */
export function privateCoturnState(): CoturnState {
  const dir = mkdtempSync(existsSync('/dev/shm') ? '/dev/shm/sync-coturn-' : join(tmpdir(), 'sync-coturn-'));
  return {
    args: [`--pidfile=${join(dir, 'turnserver.pid')}`, `--db=${join(dir, 'turndb')}`],
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface StunProbeOptions {
  timeoutMs: number;
  /** a reason to stop waiting (the server exited), asked before each try */
  stop?: () => string | undefined;
  /** added to the timeout error (the server's output) */
  context?: () => string;
}

/**
 * Resolves once 127.0.0.1:`port` answers a STUN Binding request: a STUN/TURN server's listener
 * is up, or a UDP echo peer echoes it back.
 */
export async function answersStun(port: number, opts: StunProbeOptions): Promise<void> {
  const socket = createSocket('udp4');
  const binding = Buffer.alloc(20);
  binding.writeUInt16BE(0x0001, 0);
  binding.writeUInt32BE(0x2112a442, 4);
  randomFillSync(binding, 8, 12);
  const answered = once(socket, 'message');
  const deadline = Date.now() + opts.timeoutMs;
  try {
    for (;;) {
      const stopped = opts.stop?.();
      if (stopped) throw new Error(stopped);
      socket.send(binding, port, '127.0.0.1');
      const got = await Promise.race([answered.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 100))]);
      if (got) return;
      if (Date.now() > deadline) throw new Error(`nothing answers STUN on 127.0.0.1:${port}\n${opts.context?.() ?? ''}`);
    }
  } finally {
    socket.close();
  }
}

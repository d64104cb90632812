/**
 * Waits until a spawned server accepts TCP connections on 127.0.0.1:port (bounded: 30 s);
 * throws if it exits first. A server started with stdio ignored has no readiness line to wait on.
 */
import type { ChildProcess } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';

export async function listening(child: ChildProcess, port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error('server exited during start');
    const ok = await new Promise<boolean>((done) => {
      const sock = tcpConnect(port, '127.0.0.1', () => (sock.destroy(), done(true)));
      sock.on('error', () => done(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not start');
}

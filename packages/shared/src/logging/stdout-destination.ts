/**
 * Where both processes' log lines go: stdout, one write(2) per line while stdout takes them, and
 * never a wait for a reader. pino's default destination (sonic-boom) holds every line stdout
 * refuses in memory, without limit, so a client that makes the server log (404s with long URLs)
 * grows it at will while the log reader stalls; and its exit flush retries a refused write every
 * 100 ms forever (EPIPE included: `node turn.mjs | head -1` never exited after SIGTERM). Here at
 * most LOG_HOLD_BYTES are held, written in order once stdout takes them again (retried every
 * RETRY_MS, and never torn: what a short write leaves goes first and is always held); a line
 * that does not fit in what is held is dropped and counted (sync_log_lines_dropped_total,
 * turn_log_lines_dropped_total: metrics/dropped-log-lines.ts); the exit flush tries once.
 * test/log-stall.test.ts shows both processes' cases.
 */
import { writeSync, writevSync } from 'node:fs';
import type { DestinationStream } from 'pino';

/** bytes of log lines held while stdout does not take them; later lines are dropped */
export const LOG_HOLD_BYTES = 4 * 1024 * 1024;
/** how soon held lines are tried again */
const RETRY_MS = 100;
/** at most this many held buffers per write (IOV_MAX is 1024 on Linux) */
const MAX_IOV = 256;

/** Log lines to fd 1; see the module comment. */
export class StdoutLines implements DestinationStream {
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  private retry: NodeJS.Timeout | null = null;
  /** lines dropped because LOG_HOLD_BYTES were held */
  dropped = 0;

  constructor(
    private readonly fd = 1,
    private readonly holdBytes = LOG_HOLD_BYTES,
  ) {}

  write(line: string): void {
    const bytes = Buffer.from(line, 'utf8');
    if (this.heldBytes > 0) return this.hold(bytes, false);
    let written = 0;
    try {
      written = writeSync(this.fd, bytes);
    } catch {
      // EAGAIN (the reader is behind), EPIPE (it is gone), ENOSPC...: held and tried again
    }
    // A line partly written is held whatever the bound: dropping its rest would tear it.
    if (written < bytes.length) this.hold(written === 0 ? bytes : bytes.subarray(written), written > 0);
  }

  /** Writes what is held, as far as stdout takes it now; never waits (pino's fatal, and the exit). */
  flushSync(): void {
    const held = this.held;
    while (held.length > 0) {
      const count = Math.min(held.length, MAX_IOV);
      let written: number;
      try {
        written = writevSync(this.fd, count === held.length ? held : held.slice(0, count));
      } catch {
        return;
      }
      this.heldBytes -= written;
      let i = 0;
      while (i < count && written >= (held[i] as Buffer).length) written -= (held[i++] as Buffer).length;
      if (i < count && written > 0) held[i] = (held[i] as Buffer).subarray(written); // the rest of a line goes first
      held.splice(0, i);
      if (i < count) return; // a short write: stdout is full again
    }
  }

  /** Forgets what is held and stops retrying (tests: before the descriptor is closed). */
  dispose(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.held.length = 0;
    this.heldBytes = 0;
  }

  private hold(bytes: Buffer, always: boolean): void {
    if (!always && this.heldBytes + bytes.length > this.holdBytes) {
      this.dropped++;
    } else {
      // A copy of its own: a short line's Buffer is a slice of node's shared 8 KiB pool, which
      // it would keep alive while held.
      const own = Buffer.allocUnsafeSlow(bytes.length);
      bytes.copy(own);
      this.held.push(own);
      this.heldBytes += own.length;
    }
    this.retry ??= setTimeout(this.retryHeld, RETRY_MS).unref();
  }

  private readonly retryHeld = (): void => {
    this.retry = null;
    this.flushSync();
    if (this.heldBytes > 0) this.retry = setTimeout(this.retryHeld, RETRY_MS).unref();
  };
}

let shared: StdoutLines | null = null;

/** The process's one stdout destination (every logger of a process shares it, and its count). */
export function stdoutDestination(): DestinationStream {
  if (shared) return shared;
  // A pipe is blocking until node opens process.stdout on it (libuv then sets O_NONBLOCK): a
  // write to a full blocking pipe would wait in the kernel, where nothing here could help.
  void process.stdout;
  const lines = new StdoutLines();
  process.once('exit', () => lines.flushSync());
  return (shared = lines);
}

/** Log lines dropped so far because stdout was not taking them. */
export function droppedLogLines(): number {
  return shared?.dropped ?? 0;
}

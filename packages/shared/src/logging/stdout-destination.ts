/**
 * Where both processes' log lines go: stdout, as pino's default destination writes it (sonic-boom,
 * asynchronously, off the event loop), with two bounds pino's default lacks. When stdout stops
 * taking lines (a stalled log collector, a full pipe) pino's default holds every later line in
 * memory, without limit: a client that makes the server log (404s with long URLs) grows it at
 * will. And at exit it flushes by retrying the refused write every 100 ms forever, so a process
 * whose stdout has no reader never exits after SIGTERM. Here at most LOG_HOLD_BYTES are held
 * (written in order once stdout takes them again); later lines are dropped and counted
 * (sync_log_lines_dropped_total, turn_log_lines_dropped_total); the exit flush tries once.
 * test/log-stall.test.ts shows both.
 */
import type { DestinationStream } from 'pino';
import sonicBoom, { type SonicBoom as SonicBoomClass } from 'sonic-boom';

// CommonJS (`module.exports = SonicBoom`) whose types describe an ES module.
const SonicBoom = sonicBoom as unknown as typeof SonicBoomClass;

/** bytes of log lines held while stdout does not take them; later lines are dropped */
export const LOG_HOLD_BYTES = 4 * 1024 * 1024;

interface StdoutLog {
  stream: DestinationStream;
  dropped: number;
}

let shared: StdoutLog | null = null;

/** The process's one stdout destination (every logger of a process shares it, and its count). */
export function stdoutDestination(): DestinationStream {
  return stdoutLog().stream;
}

/** Log lines dropped so far because stdout was not taking them. */
export function droppedLogLines(): number {
  return shared?.dropped ?? 0;
}

function stdoutLog(): StdoutLog {
  if (shared) return shared;
  // A pipe is blocking until node opens process.stdout on it (libuv then sets O_NONBLOCK): a
  // blocking write to a full pipe would wait in the kernel, the exit flush with it.
  void process.stdout;
  let exiting = false;
  // SonicBoom itself, not pino.destination(): that one also registers pino's exit flush, which
  // retries forever, ahead of ours.
  const dest = new SonicBoom({
    fd: 1,
    sync: false,
    maxLength: LOG_HOLD_BYTES,
    // while running, a refused write is tried again on a timer (the event loop goes on); at exit, once
    retryEAGAIN: () => !exiting,
  });
  const log: StdoutLog = { stream: dest, dropped: 0 };
  dest.on('drop', () => {
    log.dropped++;
  });
  // EPIPE (the reader is gone) and the like: what was refused stays held, within the bound.
  dest.on('error', () => undefined);
  process.once('exit', () => {
    exiting = true;
    try {
      dest.flushSync();
    } catch {
      // stdout still refuses: the held lines are lost with the process
    }
  });
  return (shared = log);
}

/**
 * A child process whose pino JSON log lines can be awaited: the deploy smoke tests start
 * the real server and TURN processes and wait for "listening" instead of sleeping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export type LogLine = Record<string, unknown>;

export interface LoggedProcess {
  child: ChildProcess;
  lines: LogLine[];
  stderr: string[];
  /** Resolves with the first log line (past or future) matching, rejects on exit or timeout. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM, then the exit code (SIGKILL after the timeout, reported as null). */
  stop(timeoutMs?: number): Promise<number | null>;
}

export function startLogged(command: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd?: string }): LoggedProcess {
  const child = spawn(command, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      lines.push({ msg: text });
    }
    for (const w of waiters) w();
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (text) => stderr.push(text));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  function waitFor(match: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.find(match);
        if (found) done(() => resolve(found));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`timed out; stderr: ${stderr.join('\n')}`))), timeoutMs);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      };
      exited.then(
        (code) => done(() => reject(new Error(`exited with ${code}; stderr: ${stderr.join('\n')}`))),
        () => undefined,
      );
      waiters.add(check);
      check();
    });
  }

  async function stop(timeoutMs = 15_000): Promise<number | null> {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  return { child, lines, stderr, waitFor, stop };
}

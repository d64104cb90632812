/**
 * Run a repo entry point as a real child process (node --import tsx ...), with a clean
 * environment, and wait on what it prints. Used by the process-level tests (config errors,
 * graceful shutdown, npm start, token CLI).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './timeout.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningProcess {
  child: ChildProcess;
  /** stdout lines so far, JSON-parsed when they are JSON (pino), else { text } */
  lines: Array<Record<string, unknown>>;
  stdout(): string;
  stderr(): string;
  /** resolves with the first stdout line that matches, rejects on exit or timeout */
  waitForLine(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<Exit>;
  /** SIGKILL if still running (for afterEach) */
  kill(): Promise<void>;
}

/**
 * Ports are picked below the kernel's ephemeral range (32768 and up here): a port the kernel
 * handed out and we released can be handed to any other socket on the host (another test's
 * WebRTC or TURN relay socket) before our process binds it; a port outside that range is only
 * ever taken by someone who asks for it by number.
 */
const PICK_FROM = 20_000;
const PICK_TO = 32_000;
/** Never the same port twice in one test process: two picks in a row are not yet bound. */
const handedOut = new Set<number>();

async function bindable(port: number, udp: boolean, tcp: boolean): Promise<boolean> {
  const tries: Array<Promise<boolean>> = [];
  if (tcp) {
    const srv = createServer();
    tries.push(
      new Promise((resolve) => {
        srv.once('error', () => resolve(false));
        srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
      }),
    );
  }
  if (udp) {
    const socket = createSocket('udp4');
    tries.push(
      new Promise((resolve) => {
        socket.once('error', () => resolve(false));
        socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
      }),
    );
  }
  return (await Promise.all(tries)).every(Boolean);
}

async function pickPort(udp: boolean, tcp: boolean): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = PICK_FROM + Math.floor(Math.random() * (PICK_TO - PICK_FROM));
    if (handedOut.has(port) || !(await bindable(port, udp, tcp))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${PICK_FROM}-${PICK_TO} after 200 tries`);
}

/**
 * A TCP port that was free a moment ago: for a process that must listen on a known port (a
 * restart reuses it so clients reconnect), or for an address where nothing listens.
 */
export function freePort(): Promise<number> {
  return pickPort(false, true);
}

/** A port free for UDP and TCP (TURN servers listen on both; UDP echo peers). */
export function freeUdpPort(): Promise<number> {
  return pickPort(true, true);
}

/** Only what a process needs to run: no AUTH_SECRET or other settings leak in from the test's own env. */
export function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'LANG']) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return { ...env, ...extra };
}

/** detached: its own process group, so a test can signal the group as a terminal's Ctrl-C does. */
export function runProcess(command: string, args: string[], env: Record<string, string>, opts: { detached?: boolean } = {}): RunningProcess {
  const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false });
  const lines: Array<Record<string, unknown>> = [];
  let out = '';
  let err = '';
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts) if (text.trim()) lines.push(parseLine(text));
    for (const wake of waiters) wake();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }) as Exit);
  let done = false;
  void exited.then(() => {
    done = true;
    for (const wake of waiters) wake();
  });

  function waitForLine(match: (line: Record<string, unknown>) => boolean, timeoutMs = 20_000) {
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      let seen = 0;
      const check = (): void => {
        for (; seen < lines.length; seen++) {
          const line = lines[seen] as Record<string, unknown>;
          if (match(line)) return finish(() => resolve(line));
        }
        if (done) finish(() => reject(new Error(`process exited before the line appeared; stderr: ${err}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no matching line in ${timeoutMs} ms; stdout: ${out.slice(-2000)} stderr: ${err}`))), timeoutMs);
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      };
      waiters.add(check);
      check();
    });
  }

  return {
    child,
    lines,
    stdout: () => out,
    stderr: () => err,
    waitForLine,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      if (opts.detached && child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL'); // anything left in its group
        } catch {
          // the group is already gone
        }
      }
    },
  };
}

function parseLine(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') return parsed as Record<string, unknown>;
  } catch {
    // not JSON: keep the text
  }
  return { text };
}

/** `node --import tsx <entry>` from the repo root, as the npm scripts run it. */
export function runEntry(entry: string, env: Record<string, string>): RunningProcess {
  return runProcess(process.execPath, ['--import', 'tsx', entry], env);
}

/** Resolve with the exit, or reject if the process is still running after timeoutMs. */
export function exitWithin(proc: RunningProcess, timeoutMs: number): Promise<Exit> {
  return withTimeout(proc.exited, timeoutMs, 'the process to exit');
}

/** The port from Fastify's "Server listening at http://127.0.0.1:PORT" line. */
export async function listeningPort(proc: RunningProcess, timeoutMs = 20_000): Promise<number> {
  const line = await proc.waitForLine((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('Server listening at'), timeoutMs);
  const match = /:(\d+)$/.exec(String(line['msg']));
  if (!match) throw new Error(`no port in ${String(line['msg'])}`);
  return Number(match[1]);
}

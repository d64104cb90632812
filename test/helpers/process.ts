/**
 * Child processes for tests: run a command or a repo entry point (node --import tsx ...) with
 * a clean environment and wait on the lines it prints; free ports to give them. Every test,
 * fixture and deploy check that starts a process and reads its output uses runProcess.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './timeout.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** the process could not be started (for example ENOENT: the command is not installed) */
  error?: Error;
}

export type Line = Record<string, unknown>;

export interface RunningProcess {
  child: ChildProcess;
  /** stdout lines so far, JSON-parsed when they are JSON (pino), else { text } */
  lines: Line[];
  /** stderr lines so far, as text */
  stderrLines: string[];
  stdout(): string;
  stderr(): string;
  /**
   * Resolves with the first stdout line (past or future) that matches, rejects on exit or
   * timeout. `from`: the index in `lines` to search from.
   */
  waitForLine(match: (line: Line) => boolean, timeoutMs?: number, from?: number): Promise<Line>;
  /** The same for stderr lines (text). */
  waitForStderr(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  exited: Promise<Exit>;
  /** `signal` (SIGTERM), then the exit; SIGKILL after `timeoutMs` */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** SIGKILL if still running (for afterEach) */
  kill(): Promise<void>;
}

export interface RunOptions {
  /** its own process group, so a test can signal the group as a terminal's Ctrl-C does */
  detached?: boolean;
  /** the repo root unless given */
  cwd?: string;
  /** a pipe to write to (child.stdin); otherwise stdin is closed */
  stdin?: boolean;
  /** run as this user and group (a root test run starting a server that refuses root) */
  uid?: number;
  gid?: number;
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

/**
 * The one child-process runner of the tests: spawns `command`, splits stdout and stderr into
 * lines as they arrive, and lets a test wait on a line with a timeout instead of sleeping.
 */
export function runProcess(command: string, args: string[], env: Record<string, string>, opts: RunOptions = {}): RunningProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    env,
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
  const lines: Line[] = [];
  const stderrLines: string[] = [];
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of waiters) w();
  };
  splitLines(child.stdout, (chunk) => (out += chunk), (text) => lines.push(parseLine(text)), wake);
  splitLines(child.stderr, (chunk) => (err += chunk), (text) => stderrLines.push(text), wake);
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => {
      err += `${command}: ${error.message}\n`;
      resolve({ code: null, signal: null, error });
    });
  });
  let done = false;
  void exited.then(() => {
    done = true;
    wake();
  });

  function waitOn<T>(list: T[], match: (line: T) => boolean, timeoutMs: number, from: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let seen = from;
      const check = (): void => {
        for (; seen < list.length; seen++) {
          const line = list[seen] as T;
          if (match(line)) return finish(() => resolve(line));
        }
        if (done) finish(() => reject(new Error(`process exited before the line appeared; stderr: ${err.slice(-2000)}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no matching line in ${timeoutMs} ms; stdout: ${out.slice(-2000)} stderr: ${err.slice(-2000)}`))), timeoutMs);
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      };
      waiters.add(check);
      check();
    });
  }

  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    child,
    lines,
    stderrLines,
    stdout: () => out,
    stderr: () => err,
    waitForLine: (match, timeoutMs = 20_000, from = 0) => waitOn(lines, match, timeoutMs, from),
    waitForStderr: (match, timeoutMs = 20_000) => waitOn(stderrLines, match, timeoutMs, 0),
    exited,
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (running()) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
    async kill() {
      if (running()) {
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

/** Calls `onLine` for each complete line of `stream`, then `after` once per chunk. */
function splitLines(stream: Readable | null, onChunk: (chunk: string) => void, onLine: (text: string) => void, after: () => void): void {
  let partial = '';
  stream?.setEncoding('utf8').on('data', (chunk: string) => {
    onChunk(chunk);
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts) if (text.trim()) onLine(text);
    after();
  });
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

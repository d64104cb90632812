/**
 * Run a TypeScript script inside a fresh loopback-only network namespace and get back the
 * one JSON result it reports. WebRTC stacks (Chromium, libwebrtc) gather candidates on every
 * interface; inside the namespace only `lo` exists, so every packet stays on 127.0.0.1.
 *
 * The namespace also gets its own PID namespace: when the script's node process (PID 1 there)
 * exits or is killed, the kernel kills everything it started (Chromium, servers), so a
 * crashed or timed-out script cannot leak processes.
 *
 * Test side: `await runInNetns(path, args, { timeoutMs })`.
 * Script side: `netnsMain(async () => result)` (or `reportResult(obj)` and exit 0 yourself).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const RESULT_PREFIX = 'RESULT ';

export interface NetnsOptions {
  /** the whole run, including node/tsx start-up (about 1 s) */
  timeoutMs: number;
  /** added to the parent's environment */
  env?: Record<string, string>;
  /** echo the child's stdout/stderr lines to this process's stderr as they arrive */
  echo?: boolean;
}

const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const TAIL_BYTES = 8_000;
/** lo must be brought up by hand in a new namespace; "$0" "$@" avoids any shell quoting */
const INNER = 'ip link set lo up && exec node --import tsx "$0" "$@"';

export class NetnsError extends Error {
  constructor(message: string, readonly stderrTail: string, readonly stdoutTail: string) {
    super(`${message}\n--- stderr (tail) ---\n${stderrTail}\n--- stdout (tail) ---\n${stdoutTail}`);
    this.name = 'NetnsError';
  }
}

/** Keep only the last TAIL_BYTES of a stream, for error messages. */
function tailCollector(): { push(chunk: string): void; text(): string } {
  let text = '';
  return {
    push(chunk) {
      text += chunk;
      if (text.length > TAIL_BYTES * 2) text = text.slice(-TAIL_BYTES);
    },
    text: () => text.slice(-TAIL_BYTES),
  };
}

/** The last `RESULT {...}` line of stdout, parsed; undefined if none. */
export function parseResult(stdout: string): unknown {
  const lines = stdout.split('\n').filter((l) => l.startsWith(RESULT_PREFIX));
  const last = lines.at(-1);
  return last === undefined ? undefined : JSON.parse(last.slice(RESULT_PREFIX.length));
}

export async function runInNetns<T = any>(scriptPath: string, args: string[], opts: NetnsOptions): Promise<T> {
  // a private TMPDIR, removed afterwards: a killed script cannot clean up its Chromium profile
  const tmp = await mkdtemp(join(tmpdir(), 'sync-suite-netns-'));
  try {
    const child = spawnInNetns(resolve(REPO_ROOT, scriptPath), args, { TMPDIR: tmp, ...opts.env });
    return await waitForResult<T>(child, scriptPath, opts);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function spawnInNetns(script: string, args: string[], env: Record<string, string>): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(
    'unshare',
    ['--net', '--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', INNER, script, ...args],
    // own process group, so a timeout can kill unshare and node together
    { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
}

function waitForResult<T>(child: ChildProcessByStdio<null, Readable, Readable>, scriptPath: string, opts: NetnsOptions): Promise<T> {
  let stdout = '';
  const stderr = tailCollector();
  const stdoutTail = tailCollector();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    stdoutTail.push(chunk);
    if (opts.echo) process.stderr.write(chunk);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr.push(chunk);
    if (opts.echo) process.stderr.write(chunk);
  });
  return new Promise<T>((resolvePromise, reject) => {
    const fail = (message: string) => reject(new NetnsError(message, stderr.text(), stdoutTail.text()));
    let timedOut = false;
    // reject only once the process is gone, so callers can rely on nothing being left behind
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      fail(`could not start unshare (root and util-linux needed): ${err.message}`);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return fail(`netns script ${scriptPath} timed out after ${opts.timeoutMs} ms`);
      if (code !== 0) return fail(`netns script ${scriptPath} exited with ${code ?? signal}`);
      try {
        const result = parseResult(stdout);
        if (result === undefined) return fail(`netns script ${scriptPath} printed no ${RESULT_PREFIX.trim()} line`);
        resolvePromise(result as T);
      } catch (err) {
        fail(`netns script ${scriptPath} printed a bad result line: ${(err as Error).message}`);
      }
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// ---- script side ----

/** Print the one result line runInNetns waits for. Call it once, last. */
export function reportResult(result: unknown): Promise<void> {
  return new Promise((done) => process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`, () => done()));
}

/**
 * Run a netns script's main: report its result and exit 0, or print the error and exit 1.
 * Exits explicitly because native WebRTC stacks can keep the event loop alive after close.
 */
export function netnsMain(main: () => Promise<unknown>): void {
  main()
    .then(async (result) => {
      await reportResult(result);
      process.exit(0);
    })
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`, () => process.exit(1));
    });
}

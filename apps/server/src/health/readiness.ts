/**
 * Readiness: named checks (storage, redis, ...) that each module registers.
 * /readyz answers 503 naming the failing check, and always 503 while shutting down.
 *
 * /readyz and /status.json need no credentials, so a report names a failing check with a fixed
 * word only ("failed" or "timeout"): a check's error text (a database's host, port, user and
 * database names) goes to the log, as a warning, never into the answer. The checks' result is
 * kept for `cacheMs` and callers within it share one run, so a flood of probes costs one
 * `SELECT 1` and one Redis PING per period, not one per request.
 */
import type { FastifyBaseLogger } from 'fastify';

export type ReadinessCheck = () => Promise<void> | void;

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, 'ok' | 'failed' | 'timeout' | 'shutting down'>;
}

export interface ReadinessOptions {
  /** where a failing check's error is logged (warn) */
  log?: FastifyBaseLogger | undefined;
  /** longest a check may take before it counts as `timeout` */
  timeoutMs?: number;
  /** how long one run of the checks answers every caller */
  cacheMs?: number;
}

/** at most this much of a check's error text is logged */
const MAX_LOGGED_ERROR_CHARS = 300;

class CheckTimeout extends Error {}

type ChecksResult = { ready: boolean; checks: ReadinessReport['checks'] };

export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();
  private readonly timeoutMs: number;
  private readonly cacheMs: number;
  private last: { at: number; result: Promise<ChecksResult> } | null = null;

  constructor(
    private readonly shuttingDown: () => boolean,
    private readonly opts: ReadinessOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.cacheMs = opts.cacheMs ?? 1000;
  }

  register(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
    this.last = null;
  }

  async report(): Promise<ReadinessReport> {
    const now = Date.now();
    // A run still in flight is shared however long it takes (each check is bounded by timeoutMs).
    if (!this.last || now - this.last.at >= this.cacheMs) this.last = { at: now, result: this.run() };
    const { ready, checks } = await this.last.result;
    // Shutting down is read on every call: the load balancer must see it at once.
    if (!this.shuttingDown()) return { ready, checks: { ...checks } };
    return { ready: false, checks: { shutdown: 'shutting down', ...checks } };
  }

  private async run(): Promise<ChecksResult> {
    const checks: ReadinessReport['checks'] = {};
    let ready = true;
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        try {
          await withTimeout(Promise.resolve().then(check), this.timeoutMs);
          checks[name] = 'ok';
        } catch (err) {
          ready = false;
          const timedOut = err instanceof CheckTimeout;
          checks[name] = timedOut ? 'timeout' : 'failed';
          const detail = (err instanceof Error ? err.message : String(err)).slice(0, MAX_LOGGED_ERROR_CHARS);
          this.opts.log?.warn({ check: name, result: checks[name], err: detail }, 'readiness check failed');
        }
      }),
    );
    return { ready, checks };
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CheckTimeout(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Readiness: named checks (storage, redis, ...) that each module registers.
 * /readyz answers 503 naming the failing check, and always 503 while shutting down.
 */
export type ReadinessCheck = () => Promise<void> | void;

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, 'ok' | string>;
}

export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();

  constructor(
    private readonly shuttingDown: () => boolean,
    private readonly timeoutMs = 2000,
  ) {}

  register(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  async report(): Promise<ReadinessReport> {
    const checks: Record<string, string> = {};
    let ready = !this.shuttingDown();
    if (!ready) checks['shutdown'] = 'shutting down';
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        try {
          await withTimeout(Promise.resolve().then(check), this.timeoutMs);
          checks[name] = 'ok';
        } catch (err) {
          ready = false;
          checks[name] = err instanceof Error ? err.message : String(err);
        }
      }),
    );
    return { ready, checks };
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

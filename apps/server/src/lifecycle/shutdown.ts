/**
 * Graceful shutdown in phases, so that every module can take part without knowing the others:
 *   drain   - stop taking new work and commit what was accepted (relay flush)
 *   sockets - close every WebSocket with 1012 so clients reconnect elsewhere
 *   release - close storage, Redis and other handles
 * Everything accepted is committed before sockets close (README "Operations", Shutdown).
 */
export type ShutdownPhase = 'drain' | 'sockets' | 'release';
export type ShutdownHook = () => Promise<void> | void;

const PHASES: readonly ShutdownPhase[] = ['drain', 'sockets', 'release'];

export class Lifecycle {
  private readonly hooks = new Map<ShutdownPhase, ShutdownHook[]>(PHASES.map((p) => [p, []]));
  private running: Promise<void> | undefined;
  shuttingDown = false;

  on(phase: ShutdownPhase, hook: ShutdownHook): void {
    this.hooks.get(phase)?.push(hook);
  }

  /** Runs each phase once, in order; later calls return the same promise. */
  shutdown(onError: (phase: ShutdownPhase, err: unknown) => void): Promise<void> {
    this.shuttingDown = true;
    this.running ??= (async () => {
      for (const phase of PHASES) {
        // async wrapper: a hook that throws synchronously is reported like a rejection, and later phases still run.
        const results = await Promise.allSettled((this.hooks.get(phase) ?? []).map(async (hook) => hook()));
        for (const r of results) if (r.status === 'rejected') onError(phase, r.reason);
      }
    })();
    return this.running;
  }
}

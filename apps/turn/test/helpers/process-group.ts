/**
 * Stopping coturn's tools without leaving anything behind. They run under `timeout`, which puts
 * itself and the tool in a process group of their own. SIGKILL to `timeout` alone orphaned the
 * tool (turnutils_peer runs until killed); SIGKILL to the group left zombies nobody reaped
 * (this machine's PID 1 does not). SIGTERM to `timeout` makes it forward the signal, reap the
 * tool and exit; the group SIGKILL after that is only a fallback.
 */
import { exitWithin, type RunningProcess } from '../../../../test/helpers/process.js';

export async function stopGroup(proc: RunningProcess, graceMs = 5000): Promise<void> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) {
    proc.child.kill('SIGTERM');
    await exitWithin(proc, graceMs).catch(() => undefined);
  }
  await proc.kill();
}

/** Any group member at all, zombies included: after stopGroup there must be none. */
export function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

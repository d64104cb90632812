/** A process's CPU time from /proc (Linux), for benchmarks that charge a server its own CPU. */
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = 100; // Linux USER_HZ

/** [user, system] CPU seconds of `pid` so far (utime, stime of /proc/<pid>/stat). */
export function cpuTimes(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name in parentheses may contain spaces: count fields after its closing ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(fields[11]) / CLK_TCK, Number(fields[12]) / CLK_TCK];
}

/** User plus system CPU seconds of `pid` so far. */
export function cpuSeconds(pid: number): number {
  const [user, system] = cpuTimes(pid);
  return user + system;
}

/**
 * Per thread of `pid`, keyed by thread id: [name, user, system CPU seconds so far]. Node names
 * every thread "node", so the id is what tells them apart; the main thread's id is `pid`.
 */
export function threadCpuTimes(pid: number): Map<number, [name: string, user: number, system: number]> {
  const out = new Map<number, [string, number, number]>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), [name, Number(fields[11]) / CLK_TCK, Number(fields[12]) / CLK_TCK]);
  }
  return out;
}

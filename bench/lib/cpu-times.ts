/** A process's CPU time from /proc (Linux), for benchmarks that charge a server its own CPU. */
import { readFileSync } from 'node:fs';

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

/**
 * The count of log lines stdout did not take (logging/stdout-destination.ts), one per process and
 * read at each scrape; the server and TURN register it under their own names.
 */
import { Counter, type Registry } from 'prom-client';
import { droppedLogLines } from '../logging/stdout-destination.js';

export function droppedLogLinesCounter(name: string, registers: Registry[]): Counter {
  return new Counter({
    name,
    help: 'Log lines dropped because stdout was not taking them (4 MiB already held)',
    registers,
    collect() {
      this.reset();
      this.inc(droppedLogLines());
    },
  });
}

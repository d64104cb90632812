/**
 * sync_relay_updates_total and sync_relay_update_bytes_total, counted in plain numbers and added
 * to the prom-client counters whenever they are read (a scrape, the status sampler, a test),
 * through their collect hooks, as signaling/message-counts.ts does: two inc() calls per accepted
 * update went through prom-client's label hashing each time.
 */
import type { Counter } from 'prom-client';

type Collect = (this: Counter) => void | Promise<void>;

export class UpdateCounts {
  private updates = 0;
  private bytes = 0;

  constructor(updates: Counter, bytes: Counter) {
    hook(updates, (c) => {
      if (this.updates > 0) c.inc(this.updates);
      this.updates = 0;
    });
    hook(bytes, (c) => {
      if (this.bytes > 0) c.inc(this.bytes);
      this.bytes = 0;
    });
  }

  /** One accepted update of `length` bytes. */
  add(length: number): void {
    this.updates++;
    this.bytes += length;
  }
}

/** Runs `fold` before the counter's own collect (if any) each time it is read. */
function hook(counter: Counter, fold: (c: Counter) => void): void {
  const hooked = counter as unknown as { collect?: Collect };
  const previous = hooked.collect;
  hooked.collect = function (this: Counter) {
    fold(this);
    return previous?.call(this);
  };
}

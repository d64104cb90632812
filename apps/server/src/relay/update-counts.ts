/**
 * sync_relay_updates_total and sync_relay_update_bytes_total, counted in plain numbers and added
 * to the prom-client counters whenever they are read (foldOnCollect), as signaling/message-counts.ts
 * does: two inc() calls per accepted update went through prom-client's label hashing each time.
 */
import type { Counter } from 'prom-client';
import { foldOnCollect } from '@sync-suite/shared/node';

export class UpdateCounts {
  private updates = 0;
  private bytes = 0;

  constructor(updates: Counter, bytes: Counter) {
    foldOnCollect(updates, (c) => {
      if (this.updates > 0) c.inc(this.updates);
      this.updates = 0;
    });
    foldOnCollect(bytes, (c) => {
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


/**
 * MAX_UNSENT_BYTES_TOTAL: the instance's budget of unsent bytes, shared by /relay, /sealed and
 * /signal. Each connection already drops a receiver that holds more than its own allowance
 * (relay/connection.ts, sealed/connection.ts, signaling/connection.ts); without this, many
 * receivers that never read would each hold their allowance, and the instance that many times.
 *
 * The count: each send charges its receiver with what it holds unsent once the message is queued
 * (ws's bufferedAmount plus this turn's output, read at the send). A receiver's charge replaces
 * its previous one, so nothing is counted twice; it only goes down when the receiver is recounted
 * (it drained), or released (its socket closed). ws tells nothing when a socket drains (the TCP
 * socket's 'drain' is its own), so between sends a charge is an upper bound of what the receiver
 * holds, and the count an upper bound of the instance's. It is made exact by a recount: of the
 * charged receivers only (never of every connection), every SWEEP_MS while any is charged, at a
 * scrape of `sync_unsent_bytes`, and when a send takes the count over the budget.
 *
 * Over the budget after the recount, the receivers holding the most are dropped as slow
 * consumers, the same drop as a receiver over its own allowance, until the instance holds at
 * most 7/8 of the budget: the sender's own receiver is dropped only if it is among those
 * holding the most; a receiver that reads holds little and is not. Going down to 7/8 means a
 * recount that finds the instance over it is followed by at least an eighth of the budget of new
 * sends before the next: the scan is not repeated per message near the budget.
 *
 * A frame sent to many receivers is counted for each (relay/ws-frames.ts writes a large message
 * by reference to every receiver, so it may be held once in memory): the budget bounds the sum
 * of ws's bufferedAmount, an upper bound of the memory.
 *
 * The charges are a Map of the receivers charged since the last recount, not a field of every
 * connection: an idle connection holds nothing here (docs/benchmarks.md, memory).
 */

import type { Gauge } from 'prom-client';

/** A connection whose sends are charged. */
export interface UnsentHolder {
  /** what it holds unsent now: ws's bufferedAmount plus this turn's output (0 once its socket is destroyed) */
  readonly unsentBytes: number;
  /** the instance is over its budget and this receiver holds the most: drop it as a slow consumer */
  shedUnsent(): void;
}

/** How often the charged receivers are recounted (those that drained leave the Map). */
const SWEEP_MS = 2000;

export class UnsentBudget {
  private readonly charges = new Map<UnsentHolder, number>();
  private total = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly max: number) {}

  /** The running count: the sum of the charges (an upper bound of what the instance holds unsent). */
  get bytes(): number {
    return this.total;
  }

  /** Receivers charged since the last recount. */
  get charged(): number {
    return this.charges.size;
  }

  /**
   * `holder` was just given a message and now holds `unsent` bytes unsent. May drop receivers,
   * `holder` among them, when this takes the instance over its budget.
   */
  charge(holder: UnsentHolder, unsent: number): void {
    const charges = this.charges;
    const before = charges.get(holder);
    charges.set(holder, unsent);
    this.total += unsent - (before ?? 0);
    if (before === undefined && this.timer === null && !this.stopped) this.startSweep();
    if (this.total > this.max) this.relieve();
  }

  /** The holder's socket closed (or it was dropped): its charge goes. Idempotent. */
  release(holder: UnsentHolder): void {
    const before = this.charges.get(holder);
    if (before === undefined) return;
    this.charges.delete(holder);
    this.total -= before;
  }

  /** Makes the count exact: every charge becomes what its receiver holds now; those holding nothing leave. */
  recount(): number {
    let total = 0;
    for (const holder of this.charges.keys()) {
      const unsent = holder.unsentBytes;
      if (unsent === 0) this.charges.delete(holder);
      else {
        this.charges.set(holder, unsent);
        total += unsent;
      }
    }
    return (this.total = total);
  }

  /** At shutdown: no more sweeps (the charges go with their sockets). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private relieve(): void {
    const target = this.max - Math.floor(this.max / 8);
    if (this.recount() <= target) return;
    // Over the budget (or within its last eighth): rare, and bounded by the charged receivers.
    const ranked = [...this.charges].sort((a, b) => b[1] - a[1]);
    for (const [holder, unsent] of ranked) {
      if (this.total <= target) break;
      // Not counted from now on: the drop destroys its socket, whose buffer goes once the destroy
      // completes (ws's bufferedAmount still reads it until then), and it is never charged again.
      this.charges.delete(holder);
      this.total -= unsent;
      holder.shedUnsent();
    }
  }

  private startSweep(): void {
    this.timer = setInterval(() => {
      this.recount();
      if (this.charges.size > 0 || !this.timer) return;
      clearInterval(this.timer);
      this.timer = null;
    }, SWEEP_MS);
    this.timer.unref();
  }
}

/** Sets `gauge` from `read` whenever it is read (a scrape, the status sampler, a test). */
export function metricOnCollect(gauge: Gauge, read: () => number): void {
  (gauge as unknown as { collect?: (this: Gauge) => void }).collect = function (this: Gauge) {
    this.set(read());
  };
}

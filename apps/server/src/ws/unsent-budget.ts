/**
 * MAX_UNSENT_BYTES_TOTAL: the instance's budget of unsent bytes, shared by /relay, /sealed and
 * /signal. Each connection already drops a receiver that holds more than its own allowance
 * (relay/connection.ts, sealed/connection.ts, signaling/connection.ts); without this, many
 * receivers that never read would each hold their allowance, and the instance that many times.
 *
 * The count: each send charges its receiver with what it holds unsent once the message is queued
 * (ws's bufferedAmount plus this turn's output, read at the send), less the large messages it
 * holds by reference (below), which are counted apart, once each. A receiver's charge replaces
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
 * A large message (over COPY_LIMIT, relay/ws-frames.ts) is queued and written by reference: the
 * same bytes object goes to every receiver of a room (ws/turn-output.ts), held once in memory
 * however many receivers hold it unsent. It is counted once while any receiver holds it (held
 * from the push until the kernel took it, the turn was dropped, or it was copied into a frame of
 * the receiver's own), and each receiver is charged only its own bytes: what it holds unsent less
 * the large messages it holds. So one large update to many readers that read is counted once,
 * not once per reader. The count is the sum of the charges plus the held messages, each once.
 * Over the budget, receivers are ranked by all they hold (their charge and their held messages):
 * dropping one releases its holds, and a message goes from the count once its last holder lets
 * it go.
 *
 * The charges are a Map of the receivers charged since the last recount, and the holds a Map of
 * the receivers holding a large message, not fields of every connection: an idle connection holds
 * nothing here (docs/benchmarks.md, memory). A small message costs no work here beyond its charge.
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

/** The large messages one receiver holds unsent, each with how many times, and their bytes in all. */
class Holds {
  bytes = 0;
  readonly messages = new Map<Uint8Array, number>();
}

export class UnsentBudget {
  /** each charged receiver's own bytes (what it holds unsent less its held large messages) */
  private readonly charges = new Map<UnsentHolder, number>();
  /** the receivers holding large messages by reference */
  private readonly held = new Map<UnsentHolder, Holds>();
  /** each held large message: how many receivers hold it */
  private readonly frames = new Map<Uint8Array, number>();
  /** the held large messages' bytes, each once */
  private shared = 0;
  private total = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly max: number) {}

  /** The running count: the sum of the charges and of the held large messages (an upper bound of what the instance holds unsent). */
  get bytes(): number {
    return this.total;
  }

  /** Receivers charged since the last recount. */
  get charged(): number {
    return this.charges.size;
  }

  /** The large messages held by reference, each counted once (part of bytes). */
  get sharedBytes(): number {
    return this.shared;
  }

  /** Receivers holding a large message by reference. */
  get holding(): number {
    return this.held.size;
  }

  /**
   * `holder` queued `message` (over COPY_LIMIT), which it writes by reference: the message is
   * counted once however many receivers hold it. The send's charge follows (it may drop receivers).
   */
  holdShared(holder: UnsentHolder, message: Uint8Array): void {
    let holds = this.held.get(holder);
    if (holds === undefined) this.held.set(holder, (holds = new Holds()));
    const times = holds.messages.get(message) ?? 0;
    holds.messages.set(message, times + 1);
    holds.bytes += message.length;
    if (times > 0) return;
    const holders = this.frames.get(message) ?? 0;
    this.frames.set(message, holders + 1);
    if (holders > 0) return;
    this.shared += message.length;
    this.total += message.length;
  }

  /**
   * One of `holder`'s holds of `message` ends: the kernel took it, its turn was dropped, or it was
   * copied into a frame of the holder's own (then the holder's next charge counts it). Releases
   * what is held only: a write's callback after the holder was released takes nothing.
   */
  releaseShared(holder: UnsentHolder, message: Uint8Array): void {
    const holds = this.held.get(holder);
    const times = holds?.messages.get(message);
    if (holds === undefined || times === undefined) return;
    holds.bytes -= message.length;
    if (times > 1) return void holds.messages.set(message, times - 1);
    holds.messages.delete(message);
    if (holds.messages.size === 0) this.held.delete(holder);
    this.unhold(message);
  }

  /**
   * `holder` was just given a message and now holds `unsent` bytes unsent. May drop receivers,
   * `holder` among them, when this takes the instance over its budget.
   */
  charge(holder: UnsentHolder, unsent: number): void {
    if (this.held.size > 0) unsent = this.own(holder, unsent);
    const charges = this.charges;
    const before = charges.get(holder);
    charges.set(holder, unsent);
    this.total += unsent - (before ?? 0);
    if (before === undefined && this.timer === null && !this.stopped) this.startSweep();
    if (this.total > this.max) this.relieve();
  }

  /** The holder's socket closed (or it was dropped): its charge and its holds go. Idempotent. */
  release(holder: UnsentHolder): void {
    const before = this.charges.get(holder);
    if (before !== undefined) {
      this.charges.delete(holder);
      this.total -= before;
    }
    const holds = this.held.get(holder);
    if (holds === undefined) return;
    this.held.delete(holder);
    for (const message of holds.messages.keys()) this.unhold(message);
  }

  /**
   * Makes the count exact: every charge becomes what its receiver holds now of its own; those
   * holding nothing leave. The held messages are counted as they are (their holds end with their writes).
   */
  recount(): number {
    let total = this.shared;
    for (const holder of this.charges.keys()) {
      const unsent = holder.unsentBytes;
      if (unsent === 0) this.charges.delete(holder);
      else {
        const own = this.own(holder, unsent);
        this.charges.set(holder, own);
        total += own;
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
    // Ranked by all they hold, their held large messages too: a receiver that stopped reading
    // holds many; dropping it frees those that no other receiver holds.
    const ranked = [...this.charges].map(([holder, own]): [UnsentHolder, number] => [holder, own + (this.held.get(holder)?.bytes ?? 0)]);
    ranked.sort((a, b) => b[1] - a[1]);
    for (const [holder] of ranked) {
      if (this.total <= target) break;
      // Not counted from now on: the drop destroys its socket, whose buffer goes once the destroy
      // completes (ws's bufferedAmount still reads it until then), and it is never charged again.
      this.release(holder);
      holder.shedUnsent();
    }
  }

  /** What `holder` holds of its own: `unsent` less the large messages it holds (which are counted once, apart). */
  private own(holder: UnsentHolder, unsent: number): number {
    const holds = this.held.get(holder);
    // A write's callback comes a tick after ws's bufferedAmount let go of it: never below 0.
    return holds === undefined ? unsent : Math.max(0, unsent - holds.bytes);
  }

  /** One receiver less holds `message`; the last one's release takes it from the count. */
  private unhold(message: Uint8Array): void {
    const holders = this.frames.get(message) ?? 0;
    if (holders > 1) return void this.frames.set(message, holders - 1);
    if (holders === 0) return;
    this.frames.delete(message);
    this.shared -= message.length;
    this.total -= message.length;
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

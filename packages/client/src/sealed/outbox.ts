/**
 * What this device holds that the sealed relay has not confirmed: updates not yet sent (merged
 * over a short window, so a burst of keystrokes is one envelope) and updates sent but not yet
 * acknowledged (sent again after a reconnect: a server killed before its commit loses nothing).
 * Plaintext only lives here, on the device.
 *
 * Nothing is merged past a size cap (the server closes a frame over RELAY_MAX_MESSAGE_BYTES with
 * 1009): `take(cap)` merges unsent updates in order while they fit. An update that alone is over
 * the cap cannot be sent: it stays here (pending, never dropped) and is handed out once by
 * `oversized(cap)` for the transport to report; what comes after it is still sent.
 */
import * as Y from 'yjs';

/** Unsent updates merged once they pile up (while the relay is released, WebRTC carrying the room). */
const MERGE_AT = 64;
/**
 * Updates sent but not yet acknowledged, at most: past it nothing more is sent until an ack
 * comes (what waits is merged), so a server that withholds acks cannot make the device hold
 * one copy of every burst forever.
 */
export const MAX_INFLIGHT = 32;

/** Where the device stood when an update was added: what an ack of it (and of all before it) proves. */
export interface OutboxMark {
  /** PendingTracker.mark() once the update was counted */
  pending?: number;
  /** the document's state vector then (persistence: what the server holds once it is acked) */
  sv?: Uint8Array;
}

interface Item {
  update: Uint8Array;
  mark: OutboxMark;
  /** add order of the first update it holds (merged items hold a run of consecutive adds) */
  seq: number;
}

/** An envelope in flight: its merged update and the items it was made of (requeued as they were). */
interface InFlight {
  update: Uint8Array;
  items: Item[];
}

export interface Taken {
  id: number;
  update: Uint8Array;
  /**
   * What its ack proves (every update added up to then is in it or in an envelope sent before):
   * undefined when an earlier update is still waiting (one over the cap, or one that did not fit).
   */
  mark: OutboxMark | undefined;
}

export class Outbox {
  private unsent: Item[] = [];
  private readonly inflight = new Map<number, InFlight>();
  private readonly reported = new WeakSet<Uint8Array>();
  private nextId = 1;
  private nextSeq = 1;
  private mergeAt = MERGE_AT;

  constructor(private cap = Infinity) {}

  /** The most an envelope's update may hold (lowered when the server says a frame was too big). */
  get maxUpdateBytes(): number {
    return this.cap;
  }

  set maxUpdateBytes(cap: number) {
    this.cap = cap;
  }

  add(update: Uint8Array, mark: OutboxMark = {}): void {
    this.unsent.push({ update, mark, seq: this.nextSeq++ });
    if (this.unsent.length >= this.mergeAt) {
      this.unsent = pack(this.unsent, this.cap);
      // what does not merge (updates near the cap) is not merged again at every add
      this.mergeAt = Math.max(MERGE_AT, 2 * this.unsent.length);
    }
  }

  get hasUnsent(): boolean {
    return this.unsent.length > 0;
  }

  /**
   * The unsent updates that fit (in order, merged up to the cap) as one update, now in flight
   * under the returned id; null when nothing that fits waits or the window is full.
   */
  take(): Taken | null {
    if (this.inflight.size >= MAX_INFLIGHT) return null;
    const at = this.unsent.findIndex((item) => item.update.byteLength <= this.cap);
    if (at < 0) return null;
    let end = at + 1;
    let size = (this.unsent[at] as Item).update.byteLength;
    for (; end < this.unsent.length; end++) {
      const next = (this.unsent[end] as Item).update.byteLength;
      if (size + next > this.cap) break;
      size += next;
    }
    let items = this.unsent.slice(at, end);
    let update = items.length === 1 ? (items[0] as Item).update : Y.mergeUpdates(items.map((i) => i.update));
    if (update.byteLength > this.cap) {
      // merging grew it past the cap (rare): the first alone fits
      items = items.slice(0, 1);
      update = (items[0] as Item).update;
    }
    this.unsent.splice(at, items.length);
    const last = items[items.length - 1] as Item;
    // the mark proves every add up to `last`: only when none of those still waits here
    // (unsent is kept in add order, so anything added earlier that waits sits before `at`)
    const prefix = at === 0;
    const id = this.nextId++;
    this.inflight.set(id, { update, items });
    return { id, update, mark: prefix ? last.mark : undefined };
  }

  /** Unsent updates over the cap not handed out before: they can never be sent at this cap. */
  oversized(): Uint8Array[] {
    const found: Uint8Array[] = [];
    for (const { update } of this.unsent) {
      if (update.byteLength <= this.cap || this.reported.has(update)) continue;
      this.reported.add(update);
      found.push(update);
    }
    return found;
  }

  /** An update over the cap waits (it holds changes no envelope carries). */
  get blocked(): boolean {
    return this.unsent.some((item) => item.update.byteLength > this.cap);
  }

  /** whether envelope `id` was sent on the current socket and not acked yet */
  inFlight(id: number): boolean {
    return this.inflight.has(id);
  }

  acked(id: number): void {
    this.inflight.delete(id);
  }

  /**
   * After a reconnect: what was in flight is unsent again, as the items it was made of (merged
   * again under the cap then in force), in add order among what still waits: an item skipped
   * over earlier (one over the cap) stays ahead of what was added after it.
   */
  requeue(): void {
    if (this.inflight.size === 0) return;
    const back: Item[] = [];
    for (const { items } of this.inflight.values()) back.push(...items);
    this.unsent = [...back, ...this.unsent].sort((a, b) => a.seq - b.seq);
    this.inflight.clear();
  }

  /** updates this device still has to get confirmed */
  get pending(): number {
    return this.unsent.length + this.inflight.size;
  }
}

/** Merges neighbours while they fit under `cap`; an update over it stays as it is. */
function pack(items: Item[], cap: number): Item[] {
  const out: Item[] = [];
  let run: Item[] = [];
  let size = 0;
  const close = (): void => {
    if (run.length === 1) out.push(run[0] as Item);
    else if (run.length > 1) {
      const merged = Y.mergeUpdates(run.map((i) => i.update));
      if (merged.byteLength <= cap) out.push({ update: merged, mark: (run[run.length - 1] as Item).mark, seq: (run[0] as Item).seq });
      else out.push(...run);
    }
    run = [];
    size = 0;
  };
  for (const item of items) {
    const n = item.update.byteLength;
    if (run.length > 0 && size + n > cap) close();
    run.push(item);
    size += n;
  }
  close();
  return out;
}

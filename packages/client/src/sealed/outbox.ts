/**
 * What this device holds that the sealed relay has not confirmed: updates not yet sent (merged
 * over a short window, so a burst of keystrokes is one envelope) and updates sent but not yet
 * acknowledged (sent again after a reconnect: a server killed before its commit loses nothing).
 * Plaintext only lives here, on the device.
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

export class Outbox {
  private unsent: Uint8Array[] = [];
  private readonly inflight = new Map<number, Uint8Array>();
  private nextId = 1;

  add(update: Uint8Array): void {
    this.unsent.push(update);
    if (this.unsent.length >= MERGE_AT) this.unsent = [Y.mergeUpdates(this.unsent)];
  }

  get hasUnsent(): boolean {
    return this.unsent.length > 0;
  }

  /** Everything unsent as one update, now in flight under the returned id; null when nothing waits or the window is full. */
  take(): { id: number; update: Uint8Array } | null {
    if (this.unsent.length === 0 || this.inflight.size >= MAX_INFLIGHT) return null;
    const update = this.unsent.length === 1 ? (this.unsent[0] as Uint8Array) : Y.mergeUpdates(this.unsent);
    this.unsent = [];
    const id = this.nextId++;
    this.inflight.set(id, update);
    return { id, update };
  }

  acked(id: number): void {
    this.inflight.delete(id);
  }

  /** After a reconnect: what was in flight is unsent again, ahead of newer updates. */
  requeue(): void {
    if (this.inflight.size === 0) return;
    this.unsent = [...this.inflight.values(), ...this.unsent];
    this.inflight.clear();
  }

  /** updates this device still has to get confirmed */
  get pending(): number {
    return this.unsent.length + this.inflight.size;
  }
}

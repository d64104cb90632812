/**
 * How many local changes no peer and no relay has confirmed yet (the `pending` of the status).
 *
 * Every connection (a relay socket, a WebRTC data channel) is ordered and reliable, and the
 * other side processes frames in order: its sync step 2 in answer to a sync step 1 we sent
 * comes after it has applied everything we sent before that step 1. So, per connection:
 *
 * - once the other side's sync step 1 has arrived, the stock provider has answered it with a
 *   sync step 2 holding every change it lacked, and every later local change is sent to it as it
 *   happens: the connection is caught up;
 * - on a caught-up connection we send our own sync step 1 (at most one in flight) when local
 *   changes are not yet confirmed, and note how many local changes there were then (a step 1
 *   the transport sends itself goes through `sendStep1`, noted the same way);
 * - each sync step 2 received answers the oldest step 1 in flight (the stock provider's own
 *   opening step 1 first, which confirms nothing) and confirms the count noted for it.
 *
 * Stock peers and the relay answer a sync step 1 with a sync step 2, nothing else is needed of
 * them. The count survives restarts through the persistence's meta table.
 *
 * A transport that confirms by acknowledgement instead (the sealed relay: the server acks an
 * envelope once it is committed) notes `mark()` when it seals an envelope and calls
 * `confirm(mark)` when that envelope is acked: every local change made up to the mark is in it
 * or in an envelope acked before.
 */
import type * as Y from 'yjs';
import { syncStep1Frame, type SyncKind } from './sync-step.js';

const PROBE_DELAY_MS = 50;

export interface PendingChannel {
  /** a frame the other side sent us */
  heard(kind: SyncKind): void;
  /**
   * Send our sync step 1 now (the relay's proof after a refusal: relay-transport.ts watchSync),
   * noted like a probe: every step 1 sent must be, or the answers are matched to the wrong ones
   * and an edit made after this step 1 is confirmed by its answer.
   */
  sendStep1(): void;
  /** the connection is gone, or can no longer be trusted to carry everything sent on it */
  close(): void;
}

interface Channel {
  send: (frame: Uint8Array) => void;
  caughtUp: boolean;
  /** local-change counts noted for each sync step 1 in flight; -1: the stock provider's own */
  inFlight: number[];
}

export class PendingTracker {
  /** local changes so far (those restored from the last session included) */
  private made = 0;
  private confirmed = 0;
  private readonly channels = new Set<Channel>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private destroyed = false;

  constructor(
    private readonly doc: Y.Doc,
    private readonly onChange: (pending: number) => void,
  ) {
    doc.on('afterTransaction', this.onTransaction);
  }

  get pending(): number {
    return this.made - this.confirmed;
  }

  /** Changes of an earlier session still unconfirmed (read from persistence). */
  restore(unconfirmed: number): void {
    if (!(unconfirmed > 0)) return;
    this.made += Math.floor(unconfirmed);
    this.changed();
  }

  /** At least `n` changes are unconfirmed (the stored document differs from the last confirmed one). */
  atLeast(n: number): void {
    const missing = Math.floor(n) - this.pending;
    if (!(missing > 0)) return;
    this.made += missing;
    this.changed();
  }

  /** How many local changes were made so far: what an envelope sealed now holds (see confirm). */
  mark(): number {
    return this.made;
  }

  /** Every local change made up to `mark` (a value of mark()) is confirmed. */
  confirm(mark: number): void {
    if (!(mark > this.confirmed)) return;
    this.confirmed = Math.min(mark, this.made);
    this.onChange(this.pending);
  }

  /** A new connection; `send` writes a frame to it. The stock provider sends its own step 1 first. */
  open(send: (frame: Uint8Array) => void): PendingChannel {
    const channel: Channel = { send, caughtUp: false, inFlight: [-1] };
    this.channels.add(channel);
    return {
      // A closed channel confirms nothing more (webrtc-transport.ts closes a pair's channel once a message to it was lost).
      heard: (kind) => {
        if (this.channels.has(channel)) this.heard(channel, kind);
      },
      // a closed channel still sends (the frame is the caller's), and notes nothing
      sendStep1: () => {
        if (this.channels.has(channel)) this.sendStep1(channel);
        else channel.send(syncStep1Frame(this.doc));
      },
      close: () => this.channels.delete(channel),
    };
  }

  destroy(): void {
    this.destroyed = true;
    clearTimeout(this.timer);
    this.channels.clear();
    this.doc.off('afterTransaction', this.onTransaction);
  }

  private readonly onTransaction = (tr: Y.Transaction): void => {
    if (!tr.local) return;
    const id = this.doc.clientID;
    const added = (tr.afterState.get(id) ?? 0) !== (tr.beforeState.get(id) ?? 0);
    if (!added && tr.deleteSet.clients.size === 0) return;
    this.made++;
    this.changed();
  };

  private heard(channel: Channel, kind: SyncKind): void {
    if (kind === 'step1' && !channel.caughtUp) {
      channel.caughtUp = true;
      this.probeSoon();
    } else if (kind === 'step2') {
      const noted = channel.inFlight.shift();
      if (noted !== undefined && noted > this.confirmed) {
        this.confirmed = noted;
        this.onChange(this.pending);
      }
      this.probeSoon();
    }
  }

  private changed(): void {
    this.onChange(this.pending);
    this.probeSoon();
  }

  /** Soon rather than now: the stock provider sends the change (or its step 2) first, and bursts of edits share one probe. */
  private probeSoon(): void {
    if (this.timer !== undefined || this.destroyed || this.pending === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.probe();
    }, PROBE_DELAY_MS);
  }

  private probe(): void {
    if (this.pending === 0) return;
    for (const channel of this.channels) {
      if (!channel.caughtUp || channel.inFlight.length > 0) continue;
      this.sendStep1(channel);
    }
  }

  private sendStep1(channel: Channel): void {
    try {
      channel.send(syncStep1Frame(this.doc));
      channel.inFlight.push(this.made);
    } catch {
      // closing: its close() follows
    }
  }
}

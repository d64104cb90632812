/**
 * Where a sealed room's device stands (progress.ts: what persistence keeps): the last seq it
 * read in order (`cursor`), the first one it could not open (it never claims to have applied
 * that one), and a state vector of what the server is known to hold. Reported to persistence at
 * once after an ack (an app may quit once pending is 0), soon after entries (a burst of them is
 * one write).
 */
import * as Y from 'yjs';
import type { SealedProgress } from './progress.js';

/** progress is stored at most this often after entries */
const PROGRESS_MS = 100;

export interface ProgressTrackerOptions {
  doc: Y.Doc;
  /** where the last session stopped */
  resume?: SealedProgress;
  /** where to store it (none: only the cursor is tracked) */
  onProgress?: (progress: SealedProgress) => void;
  /** local updates the server has not confirmed (the outbox's count) */
  pending: () => number;
  /**
   * the lowest seq this device carries (sealed/carried.ts): its snapshots cover past it, but the
   * cursor stored stays below it, so a restart reads it (or the snapshot carrying it) again
   */
  lowestCarried?: () => number | undefined;
}

export class ProgressTracker {
  /** highest seq received in order (entries and acks each the next one, a snapshot's covers; never past a gap) */
  cursor: number;
  /** the room's generation `cursor` counts in (0: unknown), named in hello */
  generation: number;
  /** the first seq this device could not open and that stops its snapshots (a snapshot that did not open; entries are carried or junk: sealed/transport.ts unapplied) */
  private firstUnopened: number | null = null;
  /** the last one (a snapshot opening later stands for those up to its covers only) */
  private lastUnopened = 0;
  /** the stored snapshot read since the start (or the last snapshot that opened) did not open */
  snapshotUnopened = false;
  /**
   * The first seq applied while the document held updates waiting for ones it lacks (Yjs pending
   * structs or deletes): Yjs emits no `update` for what waits, so no persistence stored it
   * (persistence/indexeddb.ts store, update-log.ts onUpdate), and the cursor stored stays below
   * it until nothing waits (what then integrates is emitted, and stored before the cursor): after a
   * restart the device reads that entry again. `covered` (snapshots) is not held back by it: a
   * snapshot carries what waits (sealed/transport.ts sendSnapshot).
   */
  private firstWaiting: number | null = null;
  /** state vector of what the server is known to hold (the last one reported) */
  private held: Uint8Array;
  /** the document's state vector when each envelope in flight was sealed: what its ack proves the server holds */
  private readonly sealedAt = new Map<number, Uint8Array>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly opts: ProgressTrackerOptions) {
    this.generation = opts.resume?.generation ?? 0;
    // A cursor stored without its generation (by a client before generations) may count in a log
    // deleted since: read once from 0 instead (Yjs updates are idempotent), then keep the
    // generation welcome names. docs/PROTOCOL-sealed.md, "Generation".
    this.cursor = this.generation ? (opts.resume?.cursor ?? 0) : 0;
    this.held = opts.resume?.held ?? Y.encodeStateVector(new Y.Doc());
  }

  /** What the server held at the end of the last session (the document's difference from it is sent). */
  get heldAtStart(): Uint8Array {
    return this.held;
  }

  /** Every entry up to here was applied, carried (sealed/carried.ts) or is junk to every holder of its key (a snapshot may claim no more). */
  get covered(): number {
    return this.firstUnopened === null ? this.cursor : Math.min(this.cursor, this.firstUnopened - 1);
  }

  /**
   * `welcome` named the room's generation (0: a server before generations, which names none).
   * 'same': the one kept, or none; 'adopted': the first one known, kept (and stored at once);
   * 'other': not the one kept, and the server did not close 4410 (which it does for a generation
   * it deleted): its storage lost the room or was restored from an older copy, and it serves this
   * socket from 0. The cursor then counts from 0 in the new generation, and the server is known
   * to hold nothing of this document (it all goes up again: the transport's storageReset).
   */
  welcomed(generation: number): 'same' | 'adopted' | 'other' {
    if (generation === 0 || generation === this.generation) return 'same';
    const known = this.generation;
    this.generation = generation;
    if (known !== 0) {
      this.cursor = 0;
      this.firstUnopened = null;
      this.lastUnopened = 0;
      this.snapshotUnopened = false;
      // what waits is not stored: nothing of the new generation is claimed until it integrates
      this.firstWaiting = this.waits() ? 1 : null;
      this.held = Y.encodeStateVector(new Y.Doc());
    }
    if (this.opts.onProgress) {
      clearTimeout(this.timer);
      this.report();
    }
    return known === 0 ? 'adopted' : 'other';
  }

  /** An envelope was sealed under `id`: its ack will prove the server holds the document as of `sv` (none: proves nothing). */
  sealed(id: number, sv: Uint8Array | undefined): void {
    if (this.opts.onProgress && sv) this.sealedAt.set(id, sv);
  }

  /** The server acked envelope `id` (acks come in order on a socket; the transport moves the cursor). */
  acked(id: number): void {
    this.heldUpTo(this.sealedAt.get(id), true);
    for (const older of this.sealedAt.keys()) if (older <= id) this.sealedAt.delete(older);
  }

  /** Entry or snapshot `seq` was applied (none: caught up, nothing applied). */
  applied(seq?: number): void {
    if (seq !== undefined && this.waits()) this.firstWaiting = Math.min(this.firstWaiting ?? seq, seq);
    this.heldUpTo(undefined, false);
  }

  /** `seq` stops this device's snapshots and the cursor stored never passes it (snapshotFailed; entries that do not apply are carried instead). */
  unopened(seq: number): void {
    this.firstUnopened = Math.min(this.firstUnopened ?? seq, seq);
    this.lastUnopened = Math.max(this.lastUnopened, seq);
  }

  /**
   * A snapshot (covering `covers`) did not open: it stands for every entry up to it, so none is
   * claimed, and one that opens later clears the mark only when it covers as much (a smaller one
   * leaves those after its covers unread, while the cursor stands at `covers`).
   */
  snapshotFailed(covers: number): void {
    this.unopened(1);
    this.lastUnopened = Math.max(this.lastUnopened, covers);
    this.snapshotUnopened = true;
  }

  /**
   * A snapshot up to `covers` opened: it stands for everything before it, what did not open
   * included. One that comes after later entries (the replacement of a snapshot that did not
   * open, sealed/transport.ts) does not stand for what failed after `covers`: when something did,
   * the cursor stored stops at `covers` (claiming less is safe; which ones after it failed is not kept).
   */
  snapshotOpened(covers: number): void {
    this.snapshotUnopened = false;
    if (this.firstUnopened === null || this.firstUnopened > covers) return;
    if (this.lastUnopened <= covers) {
      this.firstUnopened = null;
      this.lastUnopened = 0;
    } else this.firstUnopened = covers + 1;
  }

  /** The socket closed: envelopes in flight are sealed again under new ids. */
  resent(): void {
    this.sealedAt.clear();
  }

  /** Stores what is known now if a report is due (the transport is going away). */
  close(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.report();
  }

  /** The server holds the document as of `sv`, or all of it when nothing of this device's is waiting. */
  private heldUpTo(sv: Uint8Array | undefined, now: boolean): void {
    if (!this.opts.onProgress) return;
    if (this.opts.pending() === 0) this.held = Y.encodeStateVector(this.opts.doc);
    else if (sv) this.held = sv;
    if (now) {
      clearTimeout(this.timer);
      this.report();
    } else if (this.timer === undefined) this.timer = setTimeout(() => this.report(), PROGRESS_MS);
  }

  private report(): void {
    this.timer = undefined;
    if (this.firstWaiting !== null && !this.waits()) this.firstWaiting = null;
    const carried = this.opts.lowestCarried?.();
    const cursor = Math.min(this.covered, this.firstWaiting === null ? Infinity : this.firstWaiting - 1, carried === undefined ? Infinity : carried - 1);
    this.opts.onProgress?.({ cursor, held: this.held, ...(this.generation ? { generation: this.generation } : {}) });
  }

  /** Updates in the document wait for ones it lacks. */
  private waits(): boolean {
    return this.opts.doc.store.pendingStructs !== null || this.opts.doc.store.pendingDs !== null;
  }
}

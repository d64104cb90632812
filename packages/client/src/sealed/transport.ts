/**
 * The relay path of a sealed room (WS /sealed/<room>, docs/PROTOCOL-sealed.md), in place of the
 * y-websocket RelayTransport when SyncProvider gets `sealed: { key, previousKeys }`. Everything
 * that leaves the device is sealed (envelope.ts); the server stores and forwards what it cannot
 * open. Same surface as RelayTransport for the provider's policy: connect, release, open, synced.
 */
import * as Y from 'yjs';
import type { Awareness } from 'y-protocols/awareness';
import {
  CloseCode,
  encodeSealedMessage,
  readSealedServerMessage,
  writeSealedHello,
  writeSealedPresence,
  writeSealedSnapshot,
  writeSealedSnapshotBad,
  writeSealedUpdate,
  type SealedServerMessage,
} from '@sync-suite/shared';
import { CLOSE_ROOM_QUOTA, CLOSE_TOO_BIG } from '../attempt-pacer.js';
import type { PendingTracker } from '../pending.js';
import { ROOM_DELETED_MESSAGE } from '../room-deleted.js';
import { updateRefusal } from '../update-screen.js';
import { CarriedEnvelopes, carryLimits, decodeCarryingSnapshot, encodeCarryingSnapshot, type CarriedEnvelope, type CarryLimits } from './carried.js';
import { EnvelopeKind, envelopeKindOf, SealedKeys } from './envelope.js';
import { Outbox, type OutboxMark } from './outbox.js';
import type { SealedProgress } from './progress.js';
import { SealedPresence } from './presence.js';
import { ProgressTracker } from './progress-tracker.js';
import { SealedSocket } from './socket.js';

export interface SealedTransportOptions {
  /** ws(s)://host/sealed */
  sealedBase: string;
  room: string;
  doc: Y.Doc;
  awareness: Awareness;
  key: Uint8Array;
  previousKeys?: readonly Uint8Array[];
  WebSocket: unknown;
  getToken: () => Promise<string | undefined>;
  onChange: () => void;
  onTokenError: (err: unknown) => void;
  onRefused: (close: { code: number; reason: string }) => void;
  /** an envelope that did not open, or a server frame that did not decode */
  onSealedError: (message: string) => void;
  /** counts what the server acked (the provider's status `pending`) */
  pending?: PendingTracker;
  /** swap the socket for one with a fresh token this long before the token expires (at most half its life) */
  tokenRefreshMarginMs?: number;
  /** a WebRTC peer still carries this awareness client: its state stays when the sealed socket or its sender's connection closes */
  carriedElsewhere?: (client: number) => boolean;
  /** where the last session stopped (persistence): read from `cursor` on, send only what the server lacks */
  resume?: SealedProgress;
  /** the cursor or what the server holds advanced (to store in persistence) */
  onProgress?: (progress: SealedProgress) => void;
  /** how long own updates are merged before they are sealed and sent (default 40 ms) */
  mergeMs?: number;
  /**
   * no frame sent is larger (the server's RELAY_MAX_MESSAGE_BYTES); a server that says its limit
   * in `welcome` lowers it (or sets it, when this is not given); default until then: the server's
   * default, 10 MiB
   */
  maxMessageBytes?: number;
  /** bounds on the entries this device could not apply and carries in its snapshots (carried.ts; defaults DEFAULT_CARRY_LIMITS) */
  carry?: Partial<CarryLimits>;
}

/** the server's default RELAY_MAX_MESSAGE_BYTES (packages/shared/src/config/server-config.ts) */
export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;
/**
 * A frame's bytes beyond the update it carries: the envelope (version, kind, key id, nonce: 30,
 * tag: 16) and the message (type, id or covers, length: at most 19), rounded up.
 */
export const FRAME_OVERHEAD = 128;

/**
 * the least message limit a server's `welcome` is believed (below it the device could send
 * nothing). A 1009 is believed at any size: a server honestly set below this refuses larger
 * frames, and the device must learn to stay under its limit (a floor there kept resending the
 * frame into the same 1009, its presence first on every socket, so nothing behind it was stored);
 * one close of a hostile server then lowers the limit only until the next `welcome` states one.
 */
export const MIN_SERVER_MESSAGE_BYTES = 4096;
/**
 * Snapshot answers are bounded, so a hostile server cannot make the device upload its whole
 * document over and over by asking (docs/PROTOCOL-sealed.md, threat model). At most one per
 * SNAPSHOT_MIN_INTERVAL_MS: the server waits as long (SNAPSHOT_REQUEST_MS in
 * apps/server/src/sealed/room.ts) before it asks again, so an honest compaction is delayed by at
 * most that much.
 */
export const SNAPSHOT_MIN_INTERVAL_MS = 30_000;
/**
 * ... and only after this many seqs since the last answer brought something new: an entry that
 * changed the document, or an ack of this device's own envelope. Neither can a server mint (an ack
 * for an id not in flight is ignored, a replayed entry changes nothing), and an honest server asks
 * only past SEALED_SNAPSHOT_AFTER (default 500) stored entries.
 */
export const SNAPSHOT_MIN_NEW = 4;
/**
 * Past this many new seqs since the last answer, SNAPSHOT_MIN_INTERVAL_MS does not apply: an
 * honest server asks once per SEALED_SNAPSHOT_AFTER (default 500) entries, and a busy room must
 * compact at that pace (a burst of a few thousand edits otherwise left them all stored until
 * the room got busy again). A server cannot mint new seqs, so this still bounds it to one whole
 * document per this many real changes.
 */
export const SNAPSHOT_BURST_NEW = 256;
/**
 * At most one entry is read again (a reconnect) per this many ms. A frame damaged in flight is
 * rare; an envelope a writer without the key stored under the room's key id fails the same way,
 * and each one made every device of the room reconnect at once (a new socket and a getToken() call
 * per envelope). Past the budget an entry that does not open is taken as one read again already:
 * reported, never claimed, and read again after a restart (the stored cursor stays before it).
 */
export const REREAD_INTERVAL_MS = 30_000;
/** how long a planned swap may keep reporting the relay as synced while the next socket catches up */
const SWAP_GRACE_MS = 10_000;

export class SealedTransport {
  /** an attempt failed or the socket closed since it was last open */
  failed = false;
  /** the server deleted the room (4410): the sealed relay never connects again */
  deleted = false;
  /** caught up on the open socket: own updates and presence go out */
  private caught = false;
  /**
   * The document holds everything the room holds, so updates in it still waiting for ones it lacks
   * are the room's own gap (a member sent them so), not an entry its stored copy lost: it was
   * whole when this provider first connected, or it read the room from seq 0 since. See sendSnapshot.
   */
  private wholeRead = false;
  /** this socket's hello asked for the room from seq 0 */
  private helloFromZero = false;
  /** set while the socket is swapped for one with a fresh token (until caught up, or SWAP_GRACE_MS) */
  private swapTimer: ReturnType<typeof setTimeout> | undefined;
  private wanted = false;
  private writable = true;
  /** cursor, what did not open, what the server holds (persistence) */
  private readonly progress: ProgressTracker;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** entries read again after they failed to open (a frame damaged in flight; the stored copy may be fine) */
  private readonly reread = new Set<number>();
  /** when an entry was last read again (Date.now()): REREAD_INTERVAL_MS */
  private lastRereadAt = -Infinity;
  /** reconnecting to read from an earlier cursor, or closing for good: ignore what the old socket still delivers */
  private rereading = false;
  /** the seq this device's last snapshot covered: a server asking again for no more gets nothing */
  private lastSnapshot = 0;
  /** when this device last answered a snapshot request (Date.now()) */
  private lastSnapshotAt = -Infinity;
  /** seqs that brought something new since the last snapshot answered (SNAPSHOT_MIN_NEW) */
  private newSinceSnapshot = 0;
  /** set when an entry being applied changed the document (its 'update' event) */
  private changedByApply = false;
  /** an ack for an envelope not in flight was reported (once per socket) */
  private bogusAckReported = false;
  /**
   * this socket had its welcome: a server sends one per socket, and each one naming another
   * generation makes the device upload its whole document (storageReset), so a hostile server
   * repeating them on one socket got it once per frame instead of once per socket
   */
  private welcomed = false;
  /** a gap in the sequence was reported on this socket (once per socket) */
  private gapReported = false;
  /** the server's welcome says it takes `snapshot-bad` */
  private takesSnapshotBad = false;
  /** covers of a stored snapshot that did not open on this socket, told to the server once caught up */
  private badSnapshot: number | null = null;
  private readonly keys: SealedKeys;
  /** entries this device could not apply, carried in its snapshots so they do not stop compaction (carried.ts) */
  private readonly carried: CarriedEnvelopes;
  private readonly outbox: Outbox;
  /** no frame sent is larger: the least of the option (or the default), the server's limit from welcome, and what a 1009 taught */
  private maxFrame: number;
  /** the server's limit, as its last welcome said (undefined: not said, a server before it) */
  private serverMax: number | undefined;
  /** below the largest frame a 1009 followed (Infinity: none since the last welcome stating a limit) */
  private learnedMax = Infinity;
  /** the largest frame sent on the current socket (a 1009 names none: it was this one) */
  private sentMax = 0;
  /**
   * the largest presence frame sent on the current socket: the server has a lower limit for
   * presence (SEALED_MAX_PRESENCE_BYTES), so a 1009 after a presence larger than every other
   * frame lowers only this limit, never the updates' one
   */
  private sentMaxPresence = 0;
  /** no presence frame sent is larger (lowered when a 1009 followed a presence frame) */
  private maxPresenceFrame = Infinity;
  /** the server refused content (4507) and has not acked an envelope since: refusals are not reported again */
  private readonly refusedSinceAck = new Set<number>();
  /** a snapshot or presence over the limit was reported (once per session) */
  private readonly reportedBig = new Set<'snapshot' | 'presence'>();
  /** PendingTracker.mark() when each envelope in flight (by outbox id) was sealed */
  private readonly marks = new Map<number, number>();
  /** entries and snapshots applied, envelopes and bytes sealed: for tests and diagnostics */
  readonly stats = { applied: 0, sealed: 0, sealedBytes: 0, carriedOpened: 0 };
  private readonly presence: SealedPresence;
  private readonly socket: SealedSocket;

  constructor(private readonly opts: SealedTransportOptions) {
    this.keys = new SealedKeys(opts.room, opts.key, opts.previousKeys);
    this.carried = new CarriedEnvelopes(carryLimits(opts.carry));
    this.maxFrame = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.outbox = new Outbox(Math.max(1, this.maxFrame - FRAME_OVERHEAD));
    this.presence = new SealedPresence(opts.awareness, this, opts.carriedElsewhere);
    this.socket = new SealedSocket({
      url: `${opts.sealedBase}/${opts.room}`,
      WebSocket: opts.WebSocket,
      getToken: opts.getToken,
      onTokenError: opts.onTokenError,
      onOpen: () => this.onOpen(),
      onFrame: (frame) => this.onFrame(frame),
      onClose: (code, reason, swap) => this.onClose(code, reason, swap),
      ...(opts.tokenRefreshMarginMs !== undefined ? { refreshMarginMs: opts.tokenRefreshMarginMs } : {}),
    });
    // Whatever the document holds already (offline edits, local persistence) goes to the relay
    // too, less what the server held at the end of the last session.
    this.progress = new ProgressTracker({
      doc: opts.doc,
      pending: () => this.outbox.pending,
      lowestCarried: () => this.carried.lowest,
      ...(opts.resume ? { resume: opts.resume } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    if (opts.doc.store.clients.size > 0) this.outbox.add(Y.encodeStateAsUpdate(opts.doc, this.progress.heldAtStart), this.markNow());
    opts.doc.on('update', this.onDocUpdate);
    opts.awareness.on('update', this.onAwarenessUpdate);
  }

  /** open (or being swapped for a socket with a fresh token: the status does not flap) */
  get open(): boolean {
    return this.socket.open || this.socket.swapping || this.swapTimer !== undefined;
  }

  get synced(): boolean {
    return this.caught || this.swapTimer !== undefined;
  }

  /** local changes the server has not confirmed yet */
  get pending(): number {
    return this.outbox.pending;
  }

  connect(): void {
    if (this.deleted) return;
    this.wanted = true;
    this.socket.connect();
  }

  release(): void {
    // What is still in the merge window goes now (kept until acked: resent on the next connect).
    this.flush();
    this.endSwap();
    this.wanted = false;
    this.failed = this.deleted;
    this.refusedSinceAck.clear();
    this.socket.disconnect();
  }

  destroy(): void {
    this.release();
    clearTimeout(this.swapTimer);
    // What is known now is stored (the persistence writes it after the updates queued before).
    this.progress.close();
    clearTimeout(this.timer);
    this.opts.doc.off('update', this.onDocUpdate);
    this.opts.awareness.off('update', this.onAwarenessUpdate);
  }

  /** Every update not from this transport, WebRTC peers' included: the last device hands all it holds to the relay. */
  private readonly onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this) {
      // Yjs emits 'update' only for what changed the document: a replayed entry does not
      this.changedByApply = true;
      return;
    }
    this.outbox.add(update, this.markNow());
    if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), this.opts.mergeMs ?? 40);
  };

  private readonly onAwarenessUpdate = (changes: { added: number[]; updated: number[]; removed: number[] }, origin: unknown): void => {
    if (origin === this || !this.caught) return;
    if (this.presence.concernsOwn([...changes.added, ...changes.updated, ...changes.removed])) this.sendPresence();
  };

  /** What an ack of everything added up to now proves (see OutboxMark). */
  private markNow(): OutboxMark {
    return {
      ...(this.opts.pending ? { pending: this.opts.pending.mark() } : {}),
      ...(this.opts.onProgress ? { sv: Y.encodeStateVector(this.opts.doc) } : {}),
    };
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.caught || !this.writable) return;
    for (const update of this.outbox.oversized()) {
      this.opts.onSealedError(
        `an update of ${update.byteLength} bytes is over the server's message limit (${this.maxFrame} bytes with the envelope): it cannot be sent, stays on this device (pending) and is not retried`,
      );
    }
    const next = this.outbox.take();
    if (!next) return;
    // Its mark: every change up to it is acked already, in this envelope, or in one sent before it
    // (none when an earlier update still waits: its ack then confirms nothing).
    if (next.mark?.pending !== undefined) this.marks.set(next.id, next.mark.pending);
    this.progress.sealed(next.id, next.mark?.sv);
    this.stats.sealed++;
    this.stats.sealedBytes += next.update.byteLength;
    const envelope = this.keys.seal(EnvelopeKind.Update, next.update);
    this.send(encodeSealedMessage((e) => writeSealedUpdate(e, next.id, envelope)));
  }

  /** Sends a frame within the limit; false (reported once per kind) when it is over. */
  private send(frame: Uint8Array, kind?: 'snapshot' | 'presence'): boolean {
    const limit = kind === 'presence' ? Math.min(this.maxFrame, this.maxPresenceFrame) : this.maxFrame;
    if (frame.byteLength > limit) {
      if (kind && !this.reportedBig.has(kind)) {
        this.reportedBig.add(kind);
        this.opts.onSealedError(`a ${kind} of ${frame.byteLength} bytes is over the server's message limit (${limit} bytes): not sent`);
      }
      return false;
    }
    if (kind === 'presence') this.sentMaxPresence = Math.max(this.sentMaxPresence, frame.byteLength);
    else this.sentMax = Math.max(this.sentMax, frame.byteLength);
    this.socket.send(frame);
    return true;
  }

  private sendPresence(): void {
    const own = this.presence.own();
    if (!own) return;
    const envelope = this.keys.seal(EnvelopeKind.Presence, own);
    this.send(encodeSealedMessage((e) => writeSealedPresence(e, envelope)), 'presence');
  }

  private onOpen(): void {
    this.failed = false;
    this.rereading = false;
    this.welcomed = false;
    this.gapReported = false;
    this.bogusAckReported = false;
    this.sentMax = 0;
    this.sentMaxPresence = 0;
    this.takesSnapshotBad = false;
    this.badSnapshot = null;
    // The generation the cursor counts in (0: unknown): the server closes 4410 if the room has another.
    // A snapshot that did not open is read again (from 0): it may have been replaced meanwhile.
    const cursor = this.progress.snapshotUnopened ? 0 : this.progress.cursor;
    this.wholeRead ||= !this.waitsOnMissing();
    this.helloFromZero = cursor === 0;
    this.socket.send(encodeSealedMessage((e) => writeSealedHello(e, cursor, this.progress.generation)));
    this.opts.onChange();
  }

  private onClose(code: number, reason: string, swap: boolean): void {
    this.caught = false;
    if (swap) {
      // Planned: others' presence stays (their connections did not change), what was in flight is resent on the next socket.
      clearTimeout(this.swapTimer);
      this.swapTimer = setTimeout(() => this.endSwap(), SWAP_GRACE_MS);
    } else {
      this.endSwap();
      if (this.wanted) this.failed = true;
      this.presence.clear();
    }
    this.outbox.requeue();
    // Requeued envelopes are sealed again under new ids, with a new mark.
    this.marks.clear();
    this.progress.resent();
    if (code === CLOSE_TOO_BIG) {
      // The server's limit is below the largest frame this socket sent: stay under it from now on
      // (what was too big is not sent again; an update that alone is over it is reported by flush).
      // A presence frame larger than every other one was the cause: the server's presence limit
      // is lower than its message limit, so only presence is kept under it.
      if (this.sentMaxPresence > this.sentMax) {
        const big = this.sentMaxPresence;
        if (big > 1) this.maxPresenceFrame = Math.min(this.maxPresenceFrame, big - 1);
        this.opts.onRefused({ code, reason: `presence too big: the server's presence limit is below ${big} bytes; presence is kept under ${this.maxPresenceFrame} bytes from now on` });
      } else {
        if (this.sentMax > 1) this.learnedMax = Math.min(this.learnedMax, this.sentMax - 1);
        this.setMaxFrame();
        this.opts.onRefused({ code, reason: `message too big: the server's limit is below ${this.sentMax} bytes; frames are kept under ${this.maxFrame} bytes until the server states its limit` });
      }
    } else if (code === CloseCode.RoomDeleted) {
      // Final (the socket does not reconnect): uploading again would bring the deleted room back.
      this.deleted = true;
      this.failed = true;
      this.opts.onRefused({ code, reason: ROOM_DELETED_MESSAGE });
    } else if (code === CLOSE_ROOM_QUOTA) {
      // The server stores no more for this room, and the next socket resends what it refused:
      // the socket waits the growing back-off (socket.ts), and a run is reported once.
      if (!this.refusedSinceAck.has(code)) this.opts.onRefused({ code, reason: `${reason || 'refused'} (${code}): the server refused to store what this device sends; the sealed relay retries after the back-off and is refused while the room is full (WebRTC peers still sync); reported once until the server stores an update again` });
      this.refusedSinceAck.add(code);
    } else if (code >= 4000) this.opts.onRefused({ code, reason });
    if (code !== CLOSE_ROOM_QUOTA) this.refusedSinceAck.clear();
    this.opts.onChange();
  }

  private onFrame(frame: Uint8Array): void {
    if (this.rereading) return;
    const decoded = readSealedServerMessage(frame);
    if (!decoded.ok) return this.opts.onSealedError(`malformed server frame: ${decoded.error.error}`);
    this.dispatch(decoded.message);
  }

  private dispatch(m: SealedServerMessage): void {
    switch (m.type) {
      case 'welcome':
        if (this.welcomed) return this.opts.onSealedError('protocol error: a second welcome on this socket, ignored');
        this.welcomed = true;
        this.writable = m.writable;
        this.takesSnapshotBad = m.takesSnapshotBad === true;
        if (m.generation !== undefined && this.progress.welcomed(m.generation) === 'other') this.storageReset();
        // A limit below any real server's (a hostile or broken one) would stop every update:
        // ignored; a server that refuses frames anyway teaches its limit with a 1009.
        // A limit it states replaces what a 1009 taught (a server whose limit changed, or one that
        // closed 1009 for anything): a frame over it is refused with a 1009 again.
        if (m.maxMessageBytes !== undefined && m.maxMessageBytes >= MIN_SERVER_MESSAGE_BYTES) {
          this.serverMax = m.maxMessageBytes;
          this.learnedMax = Infinity;
          this.setMaxFrame();
        }
        return;
      case 'snapshot':
        return this.applyEnvelope(m.covers, envelopeKindOf(m.envelope) === EnvelopeKind.CarryingSnapshot ? EnvelopeKind.CarryingSnapshot : EnvelopeKind.Snapshot, m.envelope);
      case 'entry':
        return this.applyEnvelope(m.seq, EnvelopeKind.Update, m.envelope);
      case 'caught-up':
        return this.caughtUp(m.seq);
      case 'ack':
        // An ack for an envelope this socket never sent (or one acked already) proves nothing: it
        // would move the cursor over a seq this device never saw, and let a server invent seqs
        // for snapshots to cover.
        if (!this.outbox.inFlight(m.id)) return this.bogusAck(m.id, m.seq);
        // the server stores what this device sends again: a later refusal is a new run
        this.refusedSinceAck.clear();
        this.socket.contentAccepted();
        this.outbox.acked(m.id);
        if (this.advance(m.seq, 'ack')) this.newSinceSnapshot++;
        this.progress.acked(m.id);
        this.confirmAcked(m.id);
        // what waited for the in-flight window goes now
        if (this.outbox.hasUnsent && this.timer === undefined) this.flush();
        return;
      case 'snapshot-request':
        return this.sendSnapshot();
      case 'presence':
        return this.applyPresence(m.peer, m.envelope);
      case 'peer-left':
        return this.presence.left(m.peer);
    }
  }

  /**
   * The frame limit: the app's option (the server's limit, when it says it and no option is
   * given; the server's default otherwise), never above the server's limit, nor above what a
   * 1009 taught (a server before the limit in welcome, or one whose limit changed).
   */
  private setMaxFrame(): void {
    const base = this.opts.maxMessageBytes ?? this.serverMax ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxFrame = Math.min(base, this.serverMax ?? Infinity, this.learnedMax);
    this.outbox.maxUpdateBytes = Math.max(1, this.maxFrame - FRAME_OVERHEAD);
  }

  /**
   * `welcome` named a generation other than the one this device's cursor counts in, and the server
   * did not close 4410 (it does for a generation it deleted): the room's storage was lost or
   * restored from an older copy, and this socket is served from 0 (docs/PROTOCOL-sealed.md,
   * "Generation"). The tracker counts from 0 in the new generation; as for a room that starts again
   * (caughtUp), what the server lacks goes up again: it may lack all of this document, so all of
   * it (one update, sent once caught up; Yjs updates are idempotent), and the next snapshot request
   * is answered whatever this device covered before.
   */
  private storageReset(): void {
    this.lastSnapshot = 0;
    this.reread.clear();
    this.carried.clear();
    this.outbox.add(Y.encodeStateAsUpdate(this.opts.doc), this.markNow());
  }

  /** The server acks in order on a socket: an ack confirms what its envelope's mark covers. */
  private confirmAcked(id: number): void {
    const mark = this.marks.get(id);
    this.marks.delete(id);
    for (const older of this.marks.keys()) if (older < id) this.marks.delete(older);
    if (mark !== undefined) this.opts.pending?.confirm(mark);
  }

  /**
   * The cursor moves only in order: to `seq` when it is the next one. A seq beyond the next
   * (entries the server skipped) is a protocol error, reported once per socket; the cursor stays
   * before the gap, so neither a snapshot of this device nor its stored cursor claims what it
   * never got (docs/PROTOCOL-sealed.md, threat model). One at or below the cursor (a replay) moves nothing.
   */
  private advance(seq: number, what: string): boolean {
    const cursor = this.progress.cursor;
    if (seq === cursor + 1) {
      this.progress.cursor = seq;
      return true;
    }
    if (seq > cursor + 1) this.gap(`${what} ${seq} after ${cursor}`);
    return false;
  }

  private bogusAck(id: number, seq: number): void {
    if (this.bogusAckReported) return;
    this.bogusAckReported = true;
    this.opts.onSealedError(`protocol error: ack ${id} (seq ${seq}) for no envelope in flight, ignored (reported once per socket)`);
  }

  private gap(what: string): void {
    if (this.gapReported) return;
    this.gapReported = true;
    this.opts.onSealedError(`protocol error: ${what} skips entries; this device does not count past ${this.progress.cursor}`);
  }

  private applyEnvelope(seq: number, kind: EnvelopeKind, envelope: Uint8Array): void {
    const snapshot = kind !== EnvelopeKind.Update;
    const opened = this.keys.open(kind, envelope, seq);
    // A snapshot stands for everything up to what it covers (bound in its AAD; one that does not
    // open caps what this device claims at 0, below): the entries after it follow from there.
    // A snapshot at or below the cursor (the replacement of one that did not open) moves nothing.
    let next = false;
    if (snapshot) this.progress.cursor = Math.max(this.progress.cursor, seq);
    else next = this.advance(seq, 'entry');
    const now = Date.now();
    if (!opened.ok && opened.reason === 'does not open' && next && !this.reread.has(seq) && now - this.lastRereadAt >= REREAD_INTERVAL_MS) {
      // Read it once more from storage: a frame damaged on the way must not cost this device the entry.
      if (this.reread.size >= 1024) this.reread.clear();
      this.reread.add(seq);
      this.lastRereadAt = now;
      this.progress.cursor = seq - 1;
      this.rereading = true;
      this.socket.reconnect();
      return this.opts.onSealedError(`entry ${seq} does not open; reading it again`);
    }
    const what = snapshot ? 'snapshot' : 'entry';
    if (!opened.ok) {
      // A snapshot that does not open stands for every entry up to it.
      if (snapshot) this.snapshotBad(seq);
      else this.unapplied(seq, envelope, opened.reason === 'does not open');
      return this.opts.onSealedError(`${what} ${seq} ${opened.reason}`);
    }
    let update = opened.plaintext;
    let carried: CarriedEnvelope[] = [];
    if (kind === EnvelopeKind.CarryingSnapshot) {
      const decoded = decodeCarryingSnapshot(opened.plaintext, seq);
      if (!decoded) {
        this.snapshotBad(seq);
        return this.opts.onSealedError(`snapshot ${seq} does not decode (carried envelopes)`);
      }
      update = decoded.doc;
      carried = decoded.carried;
    }
    this.changedByApply = false;
    try {
      this.applyUpdate(update);
    } catch (err) {
      if (snapshot) this.snapshotBad(seq);
      else this.unapplied(seq, envelope, false);
      return this.opts.onSealedError(`${what} ${seq} is not a Yjs update: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (snapshot) {
      // A snapshot that opened covers everything up to it, including what this device could not
      // open: what it carries stands for those it could not apply either.
      this.progress.snapshotOpened(seq);
      this.carried.forgetUpTo(seq);
      this.openCarried(seq, carried);
    } else if (next && this.changedByApply) this.newSinceSnapshot++;
    this.stats.applied++;
    this.progress.applied(seq);
  }

  /** Any key holder can seal an update whose numbers Yjs would encode again forever (update-screen.ts): refused as one that is not an update. */
  private applyUpdate(update: Uint8Array): void {
    const refusal = updateRefusal(update);
    if (refusal !== undefined) throw new Error(`refused: ${refusal}`);
    Y.applyUpdate(this.opts.doc, update, this);
  }

  /**
   * Entry `seq` was not applied. Its tag failing under a key this device holds (`junk`, after it
   * was read again or past REREAD_INTERVAL_MS) makes it junk to every holder of that key: the same
   * bytes fail for all of them, so it is neither carried nor does it stop a snapshot. Anything else
   * (an unknown key id: a key of a later rotation, or junk; an envelope this version cannot read or
   * apply) is carried in this device's snapshots within the carry limits (carried.ts): those
   * cover past it either way, so no stored entry stops compaction. With `carry.maxEnvelopes` 0,
   * nothing is carried.
   */
  private unapplied(seq: number, envelope: Uint8Array, junk: boolean): void {
    if (!junk) this.carried.add(seq, envelope);
  }

  /** The envelopes a snapshot carries: opened and applied when they open here, carried on otherwise (reported once per snapshot). */
  private openCarried(covers: number, carried: readonly CarriedEnvelope[]): void {
    let kept = 0;
    for (const c of carried) {
      const opened = this.keys.open(EnvelopeKind.Update, c.envelope);
      if (opened.ok) {
        try {
          this.applyUpdate(opened.plaintext);
          this.stats.carriedOpened++;
          continue;
        } catch {
          // opens, but this version cannot apply it: carried on (a later one may)
        }
      } else if (opened.reason === 'does not open') continue;
      this.carried.add(c.seq, c.envelope);
      kept++;
    }
    if (kept > 0) this.opts.onSealedError(`snapshot ${covers} carries ${kept} entries this device cannot apply; they are carried on`);
  }

  /**
   * The stored snapshot did not open here (a writer without the key stored garbage, or one
   * sealed with a key this device lacks): nothing before it is claimed, and the server is told
   * once caught up, so it asks another writer for one that opens and sends it here
   * (docs/PROTOCOL-sealed.md, "Refuting a snapshot").
   */
  private snapshotBad(covers: number): void {
    this.progress.snapshotFailed(covers);
    this.badSnapshot = covers;
    this.reportBadSnapshot();
  }

  private reportBadSnapshot(): void {
    const covers = this.badSnapshot;
    if (covers === null || !this.caught || !this.takesSnapshotBad) return;
    this.badSnapshot = null;
    this.socket.send(encodeSealedMessage((e) => writeSealedSnapshotBad(e, covers)));
  }

  private applyPresence(peer: number, envelope: Uint8Array): void {
    const opened = this.keys.open(EnvelopeKind.Presence, envelope);
    if (!opened.ok) return this.opts.onSealedError(`presence ${opened.reason}`);
    try {
      this.presence.apply(peer, opened.plaintext);
    } catch {
      this.opts.onSealedError('presence is not an awareness update');
    }
  }

  private endSwap(): void {
    if (this.swapTimer === undefined) return;
    clearTimeout(this.swapTimer);
    this.swapTimer = undefined;
    this.opts.onChange();
  }

  private caughtUp(seq: number): void {
    // Everything up to seq was sent: more than this device got is a gap (reported, not counted);
    // less is a room that starts again (deleted, or its storage lost): claiming less is safe.
    if (seq > this.progress.cursor) this.gap(`caught-up ${seq}`);
    else {
      // a room that starts again: what was carried counts in the old log
      if (seq < this.progress.cursor) this.carried.clear();
      this.progress.cursor = seq;
    }
    this.caught = true;
    this.wholeRead ||= this.helloFromZero;
    // The server accepted this socket: if it drops, the next one opens at once.
    this.socket.succeeded();
    this.progress.applied();
    clearTimeout(this.swapTimer);
    this.swapTimer = undefined;
    this.sendPresence();
    this.reportBadSnapshot();
    this.flush();
    this.opts.onChange();
  }

  /**
   * The whole document, sealed with the current key, covering every entry this device applied:
   * only when the document has no unresolved dependencies, it covers more than the last one, SNAPSHOT_MIN_NEW seqs brought something new since,
   * and SNAPSHOT_MIN_INTERVAL_MS passed or SNAPSHOT_BURST_NEW seqs brought something new (a
   * request refused is not remembered: the server asks again).
   */
  /** Updates in the document wait for ones it lacks (Yjs's pending structs or deletes). */
  private waitsOnMissing(): boolean {
    return this.opts.doc.store.pendingStructs !== null || this.opts.doc.store.pendingDs !== null;
  }

  private sendSnapshot(): void {
    if (!this.writable || !this.caught) return;
    // Updates waiting for ones the document lacks because its stored copy lost an entry: the
    // snapshot would lack those too while covering their seqs, and the server would compact them
    // away. Once the document is known whole (wholeRead), what still waits is the room's own gap,
    // which a snapshot carries as it is: refusing then would stop the room's compaction for good.
    if (!this.wholeRead && this.waitsOnMissing()) return;
    const covers = this.progress.covered;
    if (covers <= this.lastSnapshot || this.newSinceSnapshot < SNAPSHOT_MIN_NEW) return;
    const now = Date.now();
    if (now - this.lastSnapshotAt < SNAPSHOT_MIN_INTERVAL_MS && this.newSinceSnapshot < SNAPSHOT_BURST_NEW) return;
    this.lastSnapshot = covers;
    this.lastSnapshotAt = now;
    this.newSinceSnapshot = 0;
    const doc = Y.encodeStateAsUpdate(this.opts.doc);
    const carried = this.carried.forSnapshot(covers);
    let frame = this.snapshotFrame(covers, doc, carried);
    // Past the frame limit the oldest carried envelopes go for good (they were the byte bound's to drop).
    while (frame.byteLength > this.maxFrame && carried.length > 0) {
      for (let excess = frame.byteLength - this.maxFrame; excess > 0 && carried.length > 0; ) {
        const dropped = carried.shift() as CarriedEnvelope;
        this.carried.delete(dropped.seq);
        excess -= dropped.envelope.byteLength;
      }
      frame = this.snapshotFrame(covers, doc, carried);
    }
    this.send(frame, 'snapshot');
  }

  /** A snapshot covering `covers`: kind 2 (a Yjs update, as every client reads) when it carries nothing, kind 4 otherwise (carried.ts). */
  private snapshotFrame(covers: number, doc: Uint8Array, carried: readonly CarriedEnvelope[]): Uint8Array {
    const envelope =
      carried.length === 0
        ? this.keys.seal(EnvelopeKind.Snapshot, doc, covers)
        : this.keys.seal(EnvelopeKind.CarryingSnapshot, encodeCarryingSnapshot(doc, carried), covers);
    return encodeSealedMessage((e) => writeSealedSnapshot(e, covers, envelope));
  }
}

/**
 * One sealed room in memory: its connections, the highest seq delivered to them (`head`), the
 * last presence envelope of every peer, and whom it asked for a snapshot. It never opens an
 * envelope. Entries reach the connections strictly in seq order: a seq beyond head + 1 (another
 * instance's entry whose Redis message was lost or is late) makes the room read the gap from
 * storage first.
 */
import {
  encodeSealedMessage,
  writeSealedAck,
  writeSealedEntry,
  writeSealedPeerLeft,
  writeSealedPeerPresence,
  writeSealedSnapshotRequest,
  writeSealedStoredSnapshot,
} from '@sync-suite/shared';
import { SEALED_ROW_OVERHEAD_BYTES, type SealedEntry, type SealedGeneration, type SealedRead, type SealedSnapshot } from './store/types.js';

/** What a room needs of a connection. */
export interface SealedPeer {
  readonly peer: number;
  readonly writable: boolean;
  /** caught up: may be asked for a snapshot */
  readonly caughtUp: boolean;
  /** one entry (or its ack) in seq order; the connection drops what it already sent */
  deliver(seq: number, frame: Uint8Array): void;
  /** a message outside the entry order (presence, peer-left, snapshot request) */
  send(frame: Uint8Array): void;
  /** closes the socket (the room was deleted) */
  close(code: number, reason: string): void;
}

export interface SealedRoomDeps {
  /** entries after `head` (and the snapshot, if compacted past it) from storage */
  readAfter(room: string, head: number): Promise<SealedRead>;
  snapshotAfter: number;
  onGapFillFailed(room: string, err: unknown): void;
}

/** How long a snapshot request stays outstanding before another writer may be asked. */
const SNAPSHOT_REQUEST_MS = 30_000;
/** y-protocols' awareness timeout: a presence not renewed for this long is gone. */
const PRESENCE_TTL_MS = 30_000;

export class SealedRoom {
  readonly conns = new Map<number, SealedPeer>();
  /** peer -> its last presence: the envelope, the frame sent to others, and when it came */
  readonly presence = new Map<number, { envelope: Uint8Array; frame: Uint8Array; at: number }>();
  /** seq -> the local sender to acknowledge instead of sending it the entry */
  private readonly acks = new Map<number, { peer: number; id: number }>();
  /** out of memory (the registry closed it): late reads and requests stop here */
  unloaded = false;
  /** entries stored after the snapshot, as far as this instance knows */
  storedEntries: number;
  /** bytes stored (entries and snapshot, each row with SEALED_ROW_OVERHEAD_BYTES) as far as this instance knows, for ROOM_MAX_BYTES */
  storedBytes = 0;
  /** bytes accepted here and not yet committed, for ROOM_MAX_BYTES */
  pendingBytes = 0;
  /** the room's generation in storage and the one its last purge ended (null: not read yet), read once per load for the first device that names one (registry.generation) */
  generation: SealedGeneration | null = null;
  /** that read, while it runs */
  generationRead: Promise<SealedGeneration> | null = null;
  private asked: { peer: number; at: number; answered: boolean } | null = null;
  /** the writer whose snapshot was refused last: asked again only if no other writer is there */
  private skipNext: number | null = null;
  private filling = false;
  private refill = false;

  constructor(
    readonly name: string,
    /** highest seq delivered to this room's connections */
    public head: number,
    storedEntries: number,
    private readonly deps: SealedRoomDeps,
  ) {
    this.storedEntries = storedEntries;
  }

  join(conn: SealedPeer): void {
    this.conns.set(conn.peer, conn);
  }

  leave(conn: SealedPeer): void {
    if (this.conns.get(conn.peer) !== conn) return;
    this.conns.delete(conn.peer);
    if (this.asked?.peer === conn.peer) this.asked = null;
    if (this.presence.delete(conn.peer)) this.peerLeft(conn.peer);
  }

  /** The sender of `seq` (committed here) gets an ack instead of the entry. */
  expectAck(seq: number, ack: { peer: number; id: number }): void {
    const conn = this.conns.get(ack.peer);
    if (!conn) return;
    // Already delivered (a gap fill read it from storage first): the sender got the entry; ack it now.
    if (seq <= this.head) return conn.send(encodeSealedMessage((e) => writeSealedAck(e, ack.id, seq)));
    this.acks.set(seq, ack);
  }

  /** Committed entries, here or on another instance, in any order. */
  deliver(entries: readonly SealedEntry[]): void {
    for (const entry of entries) {
      if (entry.seq <= this.head) continue;
      if (entry.seq !== this.head + 1) return this.fillGap();
      this.head = entry.seq;
      this.storedEntries++;
      this.storedBytes += entry.envelope.length + SEALED_ROW_OVERHEAD_BYTES;
      const frame = encodeSealedMessage((e) => writeSealedEntry(e, entry.seq, entry.envelope));
      const ack = this.acks.get(entry.seq);
      if (ack) this.acks.delete(entry.seq);
      for (const conn of this.conns.values()) {
        conn.deliver(entry.seq, ack?.peer === conn.peer ? encodeSealedMessage((e) => writeSealedAck(e, ack.id, entry.seq)) : frame);
      }
    }
    this.maybeAskSnapshot();
  }

  /**
   * Whether a snapshot from `peer` may be stored: only the writer asked, once per request, so a
   * writer cannot make the server rewrite a whole document in storage at every message.
   */
  takeSnapshotAnswer(peer: number): boolean {
    if (!this.asked || this.asked.peer !== peer || this.asked.answered) return false;
    this.asked.answered = true;
    return true;
  }

  /** A snapshot was stored: fewer entries stand after it. */
  compacted(covers: number): void {
    this.storedEntries = Math.max(0, this.head - covers);
    this.asked = null;
    this.skipNext = null;
  }

  /**
   * The snapshot did not cover more than the stored one (or could not be stored): keep the
   * request outstanding until it times out, so a device that cannot do better is not asked, and
   * does not upload its whole document, again at every entry; the next request goes to another writer.
   */
  snapshotRefused(): void {
    if (this.asked) this.skipNext = this.asked.peer;
  }

  /** Presence from a peer (local or remote): kept for later joiners, sent to everyone else. */
  setPresence(peer: number, envelope: Uint8Array, now = Date.now()): void {
    const frame = encodeSealedMessage((e) => writeSealedPeerPresence(e, peer, envelope));
    this.presence.set(peer, { envelope, frame, at: now });
    for (const conn of this.conns.values()) if (conn.peer !== peer) conn.send(frame);
  }

  /**
   * The presence frames a joining connection gets. Another instance's peer whose presence is
   * older than the awareness timeout is gone (its instance died without a peer-left: devices
   * renew their presence every 15 s): dropped here rather than shown to every later joiner.
   */
  presenceFrames(except: number, now = Date.now()): Uint8Array[] {
    const frames: Uint8Array[] = [];
    for (const [peer, p] of this.presence) {
      if (!this.conns.has(peer) && now - p.at > PRESENCE_TTL_MS) this.presence.delete(peer);
      else if (peer !== except) frames.push(p.frame);
    }
    return frames;
  }

  /** A remote peer left. */
  remoteLeft(peer: number): void {
    if (this.presence.delete(peer)) this.peerLeft(peer);
  }

  private peerLeft(peer: number): void {
    const frame = encodeSealedMessage((e) => writeSealedPeerLeft(e, peer));
    for (const conn of this.conns.values()) conn.send(frame);
  }

  /** Past SEALED_SNAPSHOT_AFTER stored entries, ask one caught-up writer (one at a time). */
  maybeAskSnapshot(now = Date.now()): void {
    if (this.storedEntries < this.deps.snapshotAfter || this.unloaded) return;
    if (this.asked && this.conns.has(this.asked.peer) && now - this.asked.at < SNAPSHOT_REQUEST_MS) return;
    const writers = [...this.conns.values()].filter((c) => c.writable && c.caughtUp);
    const conn = writers.find((c) => c.peer !== this.skipNext) ?? writers[0];
    if (!conn) return;
    this.asked = { peer: conn.peer, at: now, answered: false };
    conn.send(encodeSealedMessage((e) => writeSealedSnapshotRequest(e, this.head)));
  }

  /** Reads what follows head from storage and delivers it (a gap, or after a Redis outage). */
  fillGap(): void {
    if (this.filling) {
      this.refill = true;
      return;
    }
    this.filling = true;
    this.deps
      .readAfter(this.name, this.head)
      .then((read) => {
        this.filling = false;
        if (this.unloaded) return;
        const before = this.head;
        if (read.snapshot && read.snapshot.covers > this.head) this.deliverSnapshot(read.snapshot);
        this.deliver(read.entries);
        // storage is read a page at a time: more stands after this page
        if (this.head > before && this.head < read.head) this.refill = true;
        if (this.refill) {
          this.refill = false;
          this.fillGap();
        }
      })
      .catch((err: unknown) => {
        this.filling = false;
        this.deps.onGapFillFailed(this.name, err);
      });
  }

  /** Compacted past our head while we missed entries: the snapshot stands in for them. */
  private deliverSnapshot(snapshot: SealedSnapshot): void {
    const frame = encodeSealedMessage((e) => writeSealedStoredSnapshot(e, snapshot.covers, snapshot.envelope));
    this.head = snapshot.covers;
    for (const conn of this.conns.values()) conn.deliver(snapshot.covers, frame);
  }
}

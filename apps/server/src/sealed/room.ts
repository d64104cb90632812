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
import type { SealedEntry, SealedRead, SealedSnapshot } from './store/types.js';

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

export class SealedRoom {
  readonly conns = new Map<number, SealedPeer>();
  /** peer -> its last presence: the envelope, and the frame sent to others */
  readonly presence = new Map<number, { envelope: Uint8Array; frame: Uint8Array }>();
  /** seq -> the local sender to acknowledge instead of sending it the entry */
  private readonly acks = new Map<number, { peer: number; id: number }>();
  unloaded = false;
  idleTimer: NodeJS.Timeout | null = null;
  /** entries stored after the snapshot, as far as this instance knows */
  storedEntries: number;
  /** bytes stored (entries and snapshot) as far as this instance knows, for ROOM_MAX_BYTES */
  storedBytes = 0;
  /** bytes accepted here and not yet committed, for ROOM_MAX_BYTES */
  pendingBytes = 0;
  private asked: { peer: number; at: number } | null = null;
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
      this.storedBytes += entry.envelope.length;
      const frame = encodeSealedMessage((e) => writeSealedEntry(e, entry.seq, entry.envelope));
      const ack = this.acks.get(entry.seq);
      if (ack) this.acks.delete(entry.seq);
      for (const conn of this.conns.values()) {
        conn.deliver(entry.seq, ack?.peer === conn.peer ? encodeSealedMessage((e) => writeSealedAck(e, ack.id, entry.seq)) : frame);
      }
    }
    this.maybeAskSnapshot();
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
  setPresence(peer: number, envelope: Uint8Array): void {
    const frame = encodeSealedMessage((e) => writeSealedPeerPresence(e, peer, envelope));
    this.presence.set(peer, { envelope, frame });
    for (const conn of this.conns.values()) if (conn.peer !== peer) conn.send(frame);
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
    this.asked = { peer: conn.peer, at: now };
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
        if (read.snapshot && read.snapshot.covers > this.head) this.deliverSnapshot(read.snapshot);
        this.deliver(read.entries);
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

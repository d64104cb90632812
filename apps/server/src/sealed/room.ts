/**
 * One sealed room in memory: its connections, the highest seq delivered to them (`head`), the
 * last presence envelope of every peer, and whom it asked for a snapshot. It never opens an
 * envelope. Entries reach the connections strictly in seq order: a seq beyond head + 1 (another
 * instance's entry whose Redis message was lost or is late) makes the room read the gap from
 * storage first. A snapshot a device reports as not opening (`refute`) is replaced by one asked
 * of another writer (docs/PROTOCOL-sealed.md, "Refuting a snapshot").
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
  /** the token's `sub` ('' with auth off) */
  readonly sub: string;
  readonly writable: boolean;
  /** caught up: may be asked for a snapshot */
  readonly caughtUp: boolean;
  /** false while its hello is checked, before `welcome` told it a generation (absent: welcomed) */
  readonly welcomed?: boolean;
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
  /** a gap fill read storage in generation `stored`, not this room's: a delete made on another instance it missed (registry drops it) */
  onGenerationMoved(room: SealedRoom, stored: number): void;
  /** SEALED_REFUTATION_INTERVAL_MS: at most one request for a refuted snapshot's replacement per interval (default SNAPSHOT_REQUEST_MS) */
  refutationIntervalMs?: number;
  /** entries were counted in storedBytes (countedBytes grew): the registry may read the stored size again */
  onCounted?(room: SealedRoom): void;
}

/** Who stored a snapshot: its connection and its token's `sub` (a new socket has a new peer). */
export interface SealedAuthor {
  peer: number;
  sub: string;
}

/** How long a snapshot request stays outstanding before another writer may be asked. */
export const SNAPSHOT_REQUEST_MS = 30_000;
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
  /**
   * bytes of entries counted in storedBytes since it was last read from storage: a snapshot
   * stored through another instance folds them without a word (SealedRoomDeps.onCounted)
   */
  countedBytes = 0;
  /** the room's generation in storage (null: not read yet), read once per load at the first device's hello (registry.generation) */
  generation: SealedGeneration | null = null;
  /**
   * the generation storage was in when the room's head and counters were read at load (0: the
   * room had no row then); a delete made between that read and `generation`'s makes them differ
   */
  loadedGeneration = 0;
  /** that read, while it runs (null in it: this load is stale, see registry.generation) */
  generationRead: Promise<SealedGeneration | null> | null = null;

  /** The generation this room's log here is of: its devices', else the one its head was read in (0: not known). */
  get logGeneration(): number {
    return this.generation?.current ?? this.loadedGeneration;
  }
  /** `replacing`: the covers of the refuted snapshot this request is to replace */
  private asked: { peer: number; at: number; answered: boolean; replacing?: number } | null = null;
  /** the writer whose snapshot was refused last: asked again only if no other writer is there */
  private skipNext: number | null = null;
  /** covers of the stored snapshot as far as this instance knows (0: none); set by the registry at load */
  snapshotCovers = 0;
  /** who stored it, when it was stored through this instance since the room loaded */
  private snapshotAuthor: SealedAuthor | null = null;
  /** the stored snapshot was reported as not opening: its covers, until another snapshot is stored */
  private refuted: number | null = null;
  /** connections that reported the stored snapshot: they get the one that replaces it */
  private readonly refuters = new Set<number>();
  /** the author of the last refuted snapshot: asked for none while another writer is there */
  private distrusted: SealedAuthor | null = null;
  /** when a refutation last made this room ask a writer */
  private refutationAskedAt = -Infinity;
  private refutationTimer: ReturnType<typeof setTimeout> | undefined;
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
    this.refuters.delete(conn.peer);
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
    const counted = this.countedBytes;
    for (const entry of entries) {
      if (entry.seq <= this.head) continue;
      if (entry.seq !== this.head + 1) return this.fillGap(); // what was counted is told at the next delivery
      this.head = entry.seq;
      this.storedEntries++;
      const bytes = entry.envelope.length + SEALED_ROW_OVERHEAD_BYTES;
      this.storedBytes += bytes;
      this.countedBytes += bytes;
      const frame = encodeSealedMessage((e) => writeSealedEntry(e, entry.seq, entry.envelope));
      const ack = this.acks.get(entry.seq);
      if (ack) this.acks.delete(entry.seq);
      for (const conn of this.conns.values()) {
        conn.deliver(entry.seq, ack?.peer === conn.peer ? encodeSealedMessage((e) => writeSealedAck(e, ack.id, entry.seq)) : frame);
      }
    }
    if (this.countedBytes !== counted) this.deps.onCounted?.(this);
    this.maybeAskSnapshot();
  }

  /**
   * Whether a snapshot from `peer` may be stored: only the writer asked, once per request, so a
   * writer cannot make the server rewrite a whole document in storage at every message. False,
   * or what it may replace: `refuted` (the refuted snapshot's covers) when it was asked for a
   * replacement, which may then cover as much as that one (SealedStore.replaceWithSnapshot).
   */
  takeSnapshotAnswer(peer: number): false | { refuted?: number } {
    if (!this.asked || this.asked.peer !== peer || this.asked.answered) return false;
    this.asked.answered = true;
    return this.asked.replacing === undefined ? {} : { refuted: this.asked.replacing };
  }

  /**
   * A snapshot was stored: fewer entries stand after it. Connections that reported the one it
   * replaced get it now (outside the entry order: it covers entries they already have).
   */
  compacted(covers: number, envelope?: Uint8Array, author?: SealedAuthor): void {
    this.storedEntries = Math.max(0, this.head - covers);
    this.asked = null;
    this.skipNext = null;
    this.snapshotCovers = covers;
    this.snapshotAuthor = author ?? null;
    this.refuted = null;
    if (envelope && this.refuters.size > 0) {
      const frame = encodeSealedMessage((e) => writeSealedStoredSnapshot(e, covers, envelope));
      for (const peer of this.refuters) this.conns.get(peer)?.send(frame);
    }
    this.refuters.clear();
  }

  /**
   * `peer` reports that the stored snapshot covering `covers` does not open (a device holding
   * the key read it: a writer without the key, or with a wrong one, stored garbage). Only the
   * current snapshot can be refuted: false (ignored) for any other. The room then asks a writer
   * other than the snapshot's author and other than those who reported it (they cannot cover
   * it) for a replacement, at most once per refutationIntervalMs; a refutation that comes
   * meanwhile, or with no such writer connected, waits (for the interval, an entry, or a join).
   */
  refute(peer: number, covers: number, now = Date.now()): boolean {
    if (this.unloaded || covers === 0 || covers !== this.snapshotCovers) return false;
    if (this.conns.has(peer)) this.refuters.add(peer);
    if (this.refuted !== covers) {
      this.refuted = covers;
      if (this.snapshotAuthor) this.distrusted = this.snapshotAuthor;
    }
    this.maybeAskSnapshot(now);
    return true;
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

  /**
   * Past SEALED_SNAPSHOT_AFTER stored entries, ask one caught-up writer (one at a time); with a
   * refuted snapshot, ask for its replacement (see refute).
   */
  maybeAskSnapshot(now = Date.now()): void {
    if (this.unloaded) return;
    const due = this.storedEntries >= this.deps.snapshotAfter;
    if (!due && this.refuted === null) return;
    if (this.asked && this.conns.has(this.asked.peer) && now - this.asked.at < SNAPSHOT_REQUEST_MS) return this.retryRefutation(this.asked.at + SNAPSHOT_REQUEST_MS - now);
    const writers = [...this.conns.values()].filter((c) => c.writable && c.caughtUp);
    const replacement = this.refuted === null ? undefined : this.replacementWriter(writers, now);
    if (replacement) {
      const refuted = this.refuted as number;
      this.refutationAskedAt = now;
      this.asked = { peer: replacement.peer, at: now, answered: false, replacing: refuted };
      return replacement.send(encodeSealedMessage((e) => writeSealedSnapshotRequest(e, this.head)));
    }
    if (!due) return;
    const trusted = writers.filter((c) => !isAuthor(c, this.distrusted));
    const conn = trusted.find((c) => c.peer !== this.skipNext) ?? trusted[0] ?? writers.find((c) => c.peer !== this.skipNext) ?? writers[0];
    if (!conn) return;
    this.asked = { peer: conn.peer, at: now, answered: false };
    conn.send(encodeSealedMessage((e) => writeSealedSnapshotRequest(e, this.head)));
  }

  /**
   * The writer to ask for a refuted snapshot's replacement: never its author (same connection or
   * same `sub`), nor a device that reported it (it could not open it, so it cannot cover it);
   * the author of an earlier refuted snapshot only if no other writer is there.
   * Undefined while the last such request is younger than the interval (retried after it) or no
   * such writer is connected (retried at the next entry or join).
   */
  private replacementWriter(writers: readonly SealedPeer[], now: number): SealedPeer | undefined {
    const interval = this.deps.refutationIntervalMs ?? SNAPSHOT_REQUEST_MS;
    const wait = this.refutationAskedAt + interval - now;
    if (wait > 0) return void this.retryRefutation(wait);
    const others = writers.filter((c) => !isAuthor(c, this.snapshotAuthor) && !this.refuters.has(c.peer));
    const trusted = others.filter((c) => !isAuthor(c, this.distrusted));
    return trusted.find((c) => c.peer !== this.skipNext) ?? trusted[0] ?? others.find((c) => c.peer !== this.skipNext) ?? others[0];
  }

  /** One timer per room: a waiting refutation is looked at again when its wait is over. */
  private retryRefutation(ms: number): void {
    if (this.refuted === null || this.refutationTimer !== undefined) return;
    this.refutationTimer = setTimeout(() => {
      this.refutationTimer = undefined;
      this.maybeAskSnapshot();
    }, ms + 1);
    this.refutationTimer.unref?.();
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
        // The log read is another generation's (the room was deleted on another instance, which this
        // one missed): its seqs are not this room's next ones (docs/PROTOCOL-sealed.md, "Generation").
        const believed = this.logGeneration;
        if (believed !== 0 && read.generation !== believed) return this.deps.onGenerationMoved(this, read.generation);
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
    this.snapshotSeen(snapshot.covers);
    for (const conn of this.conns.values()) conn.deliver(snapshot.covers, frame);
  }

  /**
   * A snapshot read from storage (a gap fill, or a device's catch-up): one covering more than this
   * room knows of was stored through another instance. It becomes the one devices may refute;
   * its author is not known here, and it is not the refuted one.
   */
  snapshotSeen(covers: number): void {
    if (covers <= this.snapshotCovers) return;
    this.snapshotCovers = covers;
    this.snapshotAuthor = null;
    this.refuted = null;
    this.refuters.clear();
  }
}

/** Whether `conn` is `author`'s connection or another one with the same token `sub`. */
function isAuthor(conn: SealedPeer, author: SealedAuthor | null): boolean {
  return author !== null && (conn.peer === author.peer || (author.sub !== '' && conn.sub === author.sub));
}

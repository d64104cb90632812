/**
 * One relay room in memory: its document, its awareness and its connections. It checks and
 * applies what connections send, answers the sync protocol, and hands accepted updates to
 * persistence and fan-out. Everything here is synchronous and runs only after the room has
 * been read from storage, so a sync step 1 is never answered from an empty document.
 *
 * A room read from storage may start cold (persistence/stored-bytes.ts): its stored state,
 * checked and merged as bytes, answers sync step 1 while the document is still empty; the
 * document is built from it shortly after, or at once when something needs it (an update, a
 * compaction). The room's own sync step 1 (its state vector) waits for the document.
 */
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as encoding from 'lib0/encoding';
import {
  encodeAwarenessEntries,
  encodeRelayMessage,
  readRelayMessage,
  RelayMessageType,
  RelaySyncType,
  writeRelayAwareness,
  writeRelaySyncStep1,
  writeRelayUpdate,
} from '@sync-suite/shared';
import type { FanoutKind, RelayPeer, RemoteEvent, RoomFanout } from './fanout.js';
import { checkUpdateCost, countStateVector, UpdateRefused } from './update-check.js';
import type { UpdateLimits } from './update-limits.js';
import { changedPresence, checkPresenceState, readPresence, type PresenceLimits } from './presence.js';
import { applyStoredRoom, snapshotLimits, StoredEntryFailed, storedEntryLimits, type Quarantined } from './persistence/merge.js';
import { coldDiff, type ColdState } from './persistence/stored-bytes.js';
import type { StoredContent } from './persistence/types.js';
import { captureLiveState, type LiveState } from './compaction.js';
import { countOf, holds, itemsOf, withItem, withoutItem, type OneOrSet } from '../collections/one-or-set.js';

export interface RoomHooks {
  fanout: RoomFanout;
  limits: UpdateLimits;
  presence: PresenceLimits;
  /** an update changed the document: persist it (called before fan-out) */
  onAccepted(room: Room, update: Uint8Array): void;
  /** an update from another instance was refused by the cost check (it is dropped) */
  onRemoteRefused?(room: Room, refusal: UpdateRefused): void;
  /** a cold room's document was built: entries set aside only now (in the document's context) */
  onWarmed?(room: Room, quarantined: Quarantined[]): void;
  /** a step 1 past RELAY_MAX_STATE_VECTOR_CLIENTS was answered with the whole document (counted: each costs a full encode) */
  onWholeDocumentAnswer?(room: Room): void;
  /** a cold room's stored state threw while being applied: the room must be reloaded (the Y.Doc path) */
  onWarmFailed?(room: Room, failure: StoredEntryFailed): void;
  /** another instance's commit was counted in storedBytes (remoteBytes grew) */
  onRemoteCounted?(room: Room): void;
}

/**
 * The limits an update message from another instance is checked against: it merges updates each
 * checked there as one update, so it may hold several updates' structs, deletions, sub-documents
 * and content (its size is bounded by REDIS_MAX_RELAY_MESSAGE_BYTES, fanout/redis-room-fanout.ts),
 * as a snapshot does. The limits that guard the stack apply, and so do the pending limits, to
 * what the room holds waiting already (pendingHeldOnly): an instance that missed something finds
 * more and more waiting, and once that passes a limit a refusal makes the room read storage
 * (relay/remote-intake.ts). Counting the merge's own bytes refused a tiny update with a gap
 * committed with a 64 KB one (each within the limits where accepted): every such commit made
 * every other instance holding the room read all of it from storage.
 */
export function remoteMessageLimits(limits: UpdateLimits): UpdateLimits {
  return { ...snapshotLimits(limits), maxPendingBytes: limits.maxPendingBytes, maxPendingDeleteBytes: limits.maxPendingDeleteBytes, pendingHeldOnly: true };
}

/** remoteMessageLimits once per limits object (every room of a registry shares one), not per message */
const remoteLimitsOf = new WeakMap<UpdateLimits, UpdateLimits>();
function cachedRemoteMessageLimits(limits: UpdateLimits): UpdateLimits {
  let remote = remoteLimitsOf.get(limits);
  if (!remote) remoteLimitsOf.set(limits, (remote = remoteMessageLimits(limits)));
  return remote;
}

/** A state vector naming no client: answered with the whole document. */
const EMPTY_STATE_VECTOR = Uint8Array.of(0);

/** Whether a state vector names no client (its answer is the whole document, shared: Room.wholeAnswer). */
export function isEmptyStateVector(stateVector: Uint8Array): boolean {
  return stateVector.length === 1 && stateVector[0] === 0;
}

/** Transaction origin of everything that came from another instance. */
export const REMOTE_ORIGIN = Symbol('remote instance');

/** Input refused before it touched the document. */
export class RejectedInput extends Error {
  constructor(
    readonly reason: 'bad_update' | 'bad_state_vector' | 'bad_awareness',
    detail: string,
  ) {
    super(detail);
    this.name = 'RejectedInput';
  }
}

/** An update that decoded but failed while being applied: the in-memory document is suspect. */
export class RoomPoisoned extends Error {
  constructor(readonly failure: unknown) {
    super('update failed while applying; room must be reloaded from storage');
    this.name = 'RoomPoisoned';
  }
}

export class Room {
  readonly doc = new Y.Doc({ gc: true });
  readonly awareness = new awarenessProtocol.Awareness(this.doc);
  /**
   * Each connection with the awareness client ids it controls: none (null), the one id (a stock
   * client has one), or a Set of two or more (collections/one-or-set.ts). An empty Set per connection
   * cost about 170 B (docs/benchmarks.md, memory).
   */
  readonly conns = new Map<RelayPeer, OneOrSet<number>>();
  /** who controls each awareness client id held by a local connection */
  private readonly owners = new Map<number, RelayPeer>();
  /** updates in the stored log since the last snapshot, and their bytes (compaction-due.ts) */
  logLength = 0;
  logBytes = 0;
  /** the stored snapshot's size, as loaded or last written here (compaction-due.ts) */
  snapshotBytes = 0;
  /** sequence number of the stored snapshot this document incorporates (compaction fast path) */
  snapshotSeq = 0;
  /** the generation storage was in when the room loaded (persistence/types.ts): its writes name it */
  generation = 0;
  /**
   * stored size as this instance knows it (ROOM_MAX_BYTES): loaded, plus what was accepted here
   * and what other instances committed since (their update messages, as they arrive),
   * re-estimated after compaction and re-read from storage (relay/room-registry.ts)
   */
  storedBytes = 0;
  /** bytes of other instances' commits counted in storedBytes since it was last measured (their compactions may have folded them) */
  remoteBytes = 0;
  /** bytes accepted here and not committed yet (not in storage when it is measured) */
  uncommittedBytes = 0;
  unloaded = false;
  /** the stored state not yet in the document (a cold room), and when it is built at the latest */
  private cold: ColdState | null = null;
  private warmTimer: NodeJS.Timeout | null = null;
  /**
   * The answer to an empty state vector (the whole document as a sync step 2), kept until the
   * document's next transaction: peers that join with nothing (or a connection per request, asking
   * for the whole document again and again) share one encoding, sent by reference.
   */
  private wholeAnswer: Uint8Array | null = null;

  constructor(
    readonly name: string,
    private readonly hooks: RoomHooks,
  ) {
    // The server has no presence of its own.
    this.awareness.setLocalState(null);
    this.doc.on('afterTransaction', () => {
      this.wholeAnswer = null;
    });
  }

  join(peer: RelayPeer): void {
    this.conns.set(peer, null);
    // A cold room tells its state vector once it has one (warm()); its content goes out now, on the peer's step 1.
    if (!this.cold) peer.send(encodeRelayMessage((e) => writeRelaySyncStep1(e, Y.encodeStateVector(this.doc))));
    const states = this.awareness.getStates();
    if (states.size > 0) peer.send(this.awarenessMessage([...states.keys()]));
  }

  /** Removes the peer and broadcasts the removal of the awareness states it controlled. */
  leave(peer: RelayPeer): void {
    const owned = this.conns.get(peer);
    if (owned === undefined) return;
    this.conns.delete(peer);
    if (owned === null) return;
    const ids = [...itemsOf(owned)];
    for (const id of ids) this.owners.delete(id);
    const gone = ids.filter((id) => this.awareness.getStates().has(id));
    awarenessProtocol.removeAwarenessStates(this.awareness, gone, null);
    if (gone.length > 0) this.publish(this.awarenessMessage(gone), 'awareness');
  }

  /** Sync step 1 from a peer: the step 2 it is missing. Returns the answer's bytes, and whether it was the shared whole document (not encoded for it): RelayConnection paces large answers (RELAY_SYNC_ANSWER_INTERVAL_MS, RELAY_LARGE_SYNC_ANSWERS_PER_MINUTE). */
  answerStep1(peer: RelayPeer, stateVector: Uint8Array): { bytes: number; shared: boolean } {
    // A state vector names the clients of the document the peer holds: the room's, and those the
    // room lacks (edits made offline, heard from WebRTC peers, or lost by the server's storage).
    // Past the bound it is not decoded (a Map entry per client, update-check.ts countStateVector):
    // the peer gets the whole document, as for an empty state vector, and skips what it has. That
    // costs what any peer's empty step 1 costs (one encoding per version of the document, shared:
    // wholeAnswer); closing it would keep an honest peer out for good.
    const count = countStateVector(stateVector, this.hooks.limits.maxStateVectorClients + this.knownClients());
    if (!count.ok) throw new RejectedInput('bad_state_vector', count.reason);
    const known = count.tooMany ? EMPTY_STATE_VECTOR : stateVector;
    if (count.tooMany) this.hooks.onWholeDocumentAnswer?.(this);
    if (this.cold) {
      const diff = coldDiff(this.cold, known);
      peer.send(syncStep2Message(diff));
      return { bytes: diff.length, shared: false };
    }
    if (isEmptyStateVector(known)) {
      const shared = this.wholeAnswer !== null;
      const whole = (this.wholeAnswer ??= syncStep2Message(Y.encodeStateAsUpdate(this.doc)));
      peer.send(whole);
      return { bytes: whole.length, shared };
    }
    const diff = Y.encodeStateAsUpdate(this.doc, known);
    peer.send(syncStep2Message(diff));
    return { bytes: diff.length, shared: false };
  }

  /**
   * A document update (sync step 2 or update) from a peer. `frame` is the peer's whole frame
   * when it already is an update message, so it can be forwarded without re-encoding.
   * Returns false when the update brought nothing new.
   */
  applyUpdate(update: Uint8Array, origin: RelayPeer, frame?: Uint8Array): boolean {
    this.warm();
    checkUpdateCost(this.doc, update, this.hooks.limits); // throws UpdateRefused
    if (!this.integrate(update, origin)) return false;
    this.hooks.onAccepted(this, update);
    // Not back to its sender, which has it (stock clients ignore it): one write fewer per update.
    this.publish(frame ?? encodeRelayMessage((e) => writeRelayUpdate(e, update)), 'update', origin);
    return true;
  }

  /**
   * Updates from another instance (or re-read from storage after a Redis outage), applied in one
   * transaction, each checked first like a peer's; refused ones are dropped and reported. Not
   * persisted (the instance that accepted them committed them); what was new goes to local peers.
   * Returns whether anything was.
   */
  applyRemoteUpdates(updates: readonly Uint8Array[], limitsOf: (index: number) => UpdateLimits = () => this.hooks.limits): boolean {
    return this.applyChecked(updates, limitsOf).changed;
  }

  private applyChecked(updates: readonly Uint8Array[], limitsOf: (index: number) => UpdateLimits): { changed: boolean; refused: number } {
    this.warm();
    let delta: Uint8Array | null = null;
    let refused = 0;
    const capture = (u: Uint8Array): void => {
      delta = u;
    };
    this.doc.on('update', capture);
    try {
      Y.transact(this.doc, () => {
        for (const [index, update] of updates.entries()) {
          try {
            checkUpdateCost(this.doc, update, limitsOf(index));
          } catch (err) {
            if (!(err instanceof UpdateRefused)) throw err;
            refused++;
            this.hooks.onRemoteRefused?.(this, err);
            continue;
          }
          Y.applyUpdate(this.doc, update, REMOTE_ORIGIN);
        }
      }, REMOTE_ORIGIN);
    } finally {
      this.doc.off('update', capture);
    }
    if (delta === null) return { changed: false, refused };
    const changed: Uint8Array = delta;
    const frame = encodeRelayMessage((e) => writeRelayUpdate(e, changed));
    for (const peer of this.conns.keys()) peer.send(frame);
    return { changed: true, refused };
  }

  /**
   * A room's stored state re-read (after a Redis outage): applied like remote updates, each entry
   * checked as on load. What other instances committed and this one did not hear of counts from
   * it (storedBytes is at least what storage holds and this instance has not committed yet).
   */
  applyStoredState(stored: StoredContent): boolean {
    const entries = stored.snapshot ? [stored.snapshot, ...stored.updates] : stored.updates;
    this.storedBytes = Math.max(this.storedBytes, storedSize(stored) + this.uncommittedBytes);
    return this.applyRemoteUpdates(entries, (i) => storedEntryLimits(this.hooks.limits, i === 0 && stored.snapshot !== null));
  }

  /** An awareness update from another instance, forwarded unchanged to local peers. */
  applyRemoteAwareness(update: Uint8Array, frame: Uint8Array): void {
    awarenessProtocol.applyAwarenessUpdate(this.awareness, update, REMOTE_ORIGIN);
    for (const peer of this.conns.keys()) peer.send(frame);
  }

  /**
   * An awareness update from a peer. Only entries that change something are kept, one per client
   * id (presence.ts changedPresence: duplicates and entries that are not newer are dropped, so one
   * message cannot repeat a state to every receiver). A connection may only set or remove the
   * client ids it introduced (at most maxStatesPerConnection; extra ids are dropped): at most that
   * many states are forwarded per message. Entries about other clients are dropped (stock clients
   * echo every presence change they receive, so they are not refused). A message with more than
   * maxEntries entries is refused before any is read, and only the kept entries' states are
   * checked (nesting, JSON): the rest are never parsed. Forwarded as received when every entry was
   * kept, else re-encoded from the kept ones; nothing is forwarded when nothing changed. Returns
   * how many entries were dropped.
   */
  applyAwareness(update: Uint8Array, origin: RelayPeer, frame: Uint8Array): number {
    const limits = this.hooks.presence;
    // MAX_PEERS_PER_ROOM counts this instance's connections; other instances' states are applied as
    // they come, and a newcomer echoes every state it was told: the bound follows what the room holds.
    const held = this.awareness.getStates().size;
    const entries = readPresence(update, limits, Math.max(limits.maxEntries, 2 * held + limits.maxStatesPerConnection)); // throws PresenceRefused
    let own = this.conns.get(origin);
    if (own === undefined) return entries.length;
    const states = this.awareness.getStates();
    const changed = changedPresence(entries, (id) => this.awareness.meta.get(id)?.clock, (id) => states.has(id));
    let owned = countOf(own);
    const introduced: number[] = [];
    const kept = changed.filter((e) => {
      if (holds(own as OneOrSet<number>, e.clientID)) return true;
      if (e.removed || this.owners.has(e.clientID) || states.has(e.clientID)) return false; // someone else's
      if (owned >= limits.maxStatesPerConnection) return false;
      owned++;
      introduced.push(e.clientID);
      return true;
    });
    if (kept.length === 0) return entries.length;
    for (const e of kept) checkPresenceState(e, limits); // throws PresenceRefused, before any id is taken
    for (const id of introduced) {
      own = withItem(own, id);
      this.owners.set(id, origin);
    }
    this.conns.set(origin, own); // before applying, as the ids are taken in `owners` already
    const applied = kept.length === entries.length ? update : encodeAwarenessEntries(kept);
    awarenessProtocol.applyAwarenessUpdate(this.awareness, applied, origin);
    for (const e of kept) {
      // y-protocols ignores a removal with an older clock: the state stays, and so does its owner
      // (else it would linger unowned, outside the connection's count, until the awareness timeout).
      if (!e.removed || states.has(e.clientID)) continue;
      own = withoutItem(own, e.clientID);
      this.owners.delete(e.clientID);
    }
    // A connection that left meanwhile (an observer of the update) is not put back.
    if (this.conns.has(origin)) this.conns.set(origin, own);
    this.publish(applied === update ? frame : encodeRelayMessage((en) => writeRelayAwareness(en, applied)), 'awareness');
    return entries.length - kept.length;
  }

  /**
   * What another instance told (relay/fanout.ts): a relay message is applied like
   * applyRemoteUpdates / applyRemoteAwareness; a presence query is answered when we hold presence.
   * An update message is a merge of updates that instance accepted and committed, each within the
   * limits there: it is checked against remoteMessageLimits, not as one update. Returns false when
   * it was refused anyway (reported): the caller reads the room from storage, which holds it.
   * Updates come only as `checked` (their generation checked: relay/remote-intake.ts); one in
   * another message (the awareness kind) is refused the same way.
   * An update stored there counts in storedBytes here too (ROOM_MAX_BYTES), refused or not (storage
   * holds it); with `heldBack` (it arrived while the room was read from storage, which may have
   * had it) only when it brought something new.
   * Throws when a message cannot be decoded or applied (the document is then suspect).
   */
  applyRemote(event: Exclude<RemoteEvent, { kind: 'reload' | 'update' }>, checked = false, heldBack = false): boolean {
    if (event.kind === 'awareness-query') {
      if (this.conns.size > 0 && this.awareness.getStates().size > 0) this.hooks.fanout.publish(this.name, this.awarenessMessage(), 'awareness');
      return true;
    }
    const decoded = readRelayMessage(event.payload);
    if (!decoded.ok) throw new Error(`undecodable relay frame from another instance: ${decoded.error.error}`);
    const m = decoded.message;
    if (m.type === 'update' || m.type === 'sync-step2') {
      if (!checked) return false;
      const limits = cachedRemoteMessageLimits(this.hooks.limits);
      const applied = this.applyChecked([m.update], () => limits);
      if (!heldBack || applied.changed) this.countRemote(m.update.length);
      return applied.refused === 0;
    }
    if (m.type === 'awareness') this.applyRemoteAwareness(m.update, event.payload);
    return true;
  }

  /** Bytes another instance committed, counted for ROOM_MAX_BYTES; the registry may measure the room (onRemoteCounted). */
  private countRemote(bytes: number): void {
    this.storedBytes += bytes;
    this.remoteBytes += bytes;
    this.hooks.onRemoteCounted?.(this);
  }

  /** Every known awareness state, for query-awareness. */
  awarenessMessage(clients: number[] = [...this.awareness.getStates().keys()]): Uint8Array {
    return encodeRelayMessage((e) => writeRelayAwareness(e, awarenessProtocol.encodeAwarenessUpdate(this.awareness, clients)));
  }

  /**
   * Starts cold: `cold` answers sync step 1 until the document is built, at the latest after
   * `warmAfterMs` (time for the answers to leave: building blocks the event loop).
   */
  startCold(cold: ColdState, warmAfterMs: number): void {
    this.cold = cold;
    this.warmTimer = setTimeout(() => {
      this.warmTimer = null;
      try {
        this.warm();
      } catch (err) {
        if (!(err instanceof RoomPoisoned)) throw err; // reported and reloaded by onWarmFailed
      }
    }, warmAfterMs);
  }

  /** Clients the room's document has: while cold, its stored client sections (an upper bound: a client may have several). */
  private knownClients(): number {
    if (!this.cold) return this.doc.store.clients.size;
    let sections = 0;
    for (const part of this.cold.parts) sections += part.layout.sections.length / 7;
    return sections;
  }

  get isCold(): boolean {
    return this.cold !== null;
  }

  /** cold, and its snapshot taken on its stamp (persistence/snapshot-stamp.ts) rather than read and checked again */
  get coldFromStamp(): boolean {
    return this.cold?.stamped ?? false;
  }

  /**
   * Builds a cold room's document from its stored state (entries the cold checks set aside stay
   * out), then tells every peer the room's state vector. Throws RoomPoisoned when an entry threw
   * while being applied (onWarmFailed has reloaded the room).
   */
  warm(): void {
    const cold = this.cold;
    if (!cold) return;
    this.cold = null;
    if (this.warmTimer) clearTimeout(this.warmTimer);
    this.warmTimer = null;
    let quarantined: Quarantined[];
    try {
      quarantined = applyStoredRoom(this.doc, cold.stored, 'storage', this.hooks.limits, cold.skip, cold.stamped);
    } catch (err) {
      if (!(err instanceof StoredEntryFailed)) throw err;
      this.hooks.onWarmFailed?.(this, err);
      throw new RoomPoisoned(err);
    }
    const aside = quarantined.filter((q) => !cold.skip.has(q.index));
    if (aside.length > 0) this.hooks.onWarmed?.(this, aside);
    if (this.conns.size === 0) return;
    const step1 = encodeRelayMessage((e) => writeRelaySyncStep1(e, Y.encodeStateVector(this.doc)));
    for (const peer of this.conns.keys()) peer.send(step1);
  }

  /** What compaction needs of the live document (compaction.ts captureLiveState); null while cold (compaction then reads storage alone). */
  liveState(withDeletions = true): LiveState | null {
    return this.cold || this.unloaded ? null : captureLiveState(this.doc, this.snapshotSeq, this.generation, withDeletions);
  }

  destroy(): void {
    this.unloaded = true;
    this.cold = null;
    this.wholeAnswer = null;
    if (this.warmTimer) clearTimeout(this.warmTimer);
    this.warmTimer = null;
    this.awareness.destroy();
    this.doc.destroy();
  }

  /**
   * To every local connection but `except`, then to the other instances. Awareness goes to its
   * sender too: a stock client closes a socket that heard nothing for 30 s, and when it is alone
   * in a room its own 15 s presence renewal coming back is all it hears (docs/PROTOCOL-relay.md).
   */
  private publish(message: Uint8Array, kind: FanoutKind, except?: RelayPeer): void {
    for (const peer of this.conns.keys()) if (peer !== except) peer.send(message);
    this.hooks.fanout.publish(this.name, message, kind);
  }

  /**
   * Applies in one transaction; true if the document changed or its pending structs or deletions
   * did. Those are compared by content: Yjs merges an update that cannot apply yet into the
   * pending structs it holds in place (the same object, a new `update` array), and makes its
   * pending deletions a new array on every update it applies while any wait, changed or not.
   */
  private integrate(update: Uint8Array, origin: RelayPeer): boolean {
    const store = this.doc.store;
    const structsBefore = store.pendingStructs?.update ?? null;
    const dsBefore = store.pendingDs;
    let tr: Y.Transaction | undefined;
    try {
      Y.transact(this.doc, (t) => {
        tr = t;
        Y.applyUpdate(this.doc, update, origin);
      }, origin);
    } catch (err) {
      throw new RoomPoisoned(err);
    }
    if (!sameBytes(store.pendingStructs?.update ?? null, structsBefore) || !sameBytes(store.pendingDs, dsBefore)) return true;
    if (!tr) return false;
    if (tr.deleteSet.clients.size > 0) return true;
    for (const [client, clock] of tr.afterState) if (tr.beforeState.get(client) !== clock) return true;
    return false;
  }
}

/** Bytes of a stored state as ROOM_MAX_BYTES counts them: the snapshot and every log entry. */
export function storedSize(stored: StoredContent): number {
  return stored.updates.reduce((n, u) => n + u.length, stored.snapshot?.length ?? 0);
}

/** Whether two byte arrays (or their absence) are equal: the same array without reading it. */
function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/**
 * Sync step 2 carrying `update`, allocated once: through an encoder (encodeRelayMessage) a large
 * update is copied twice, into the encoder and out of it; a cold room's whole state is megabytes.
 */
export function syncStep2Message(update: Uint8Array): Uint8Array {
  const head = encodeRelayMessage((e) => {
    encoding.writeVarUint(e, RelayMessageType.Sync);
    encoding.writeVarUint(e, RelaySyncType.Step2);
    encoding.writeVarUint(e, update.length);
  });
  const out = new Uint8Array(head.length + update.length);
  out.set(head);
  out.set(update, head.length);
  return out;
}

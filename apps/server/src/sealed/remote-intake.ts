/**
 * The sealed registry's side of the fan-out (sealed/fanout.ts moves the bytes): what this
 * instance tells the others (committed entries, presence, peer-left, encoded by
 * sealed/bus-payload.ts), and what they tell, handed to the room. A room subscribes before its
 * head is read from storage and holds what arrives until it is loaded; after an outage every
 * held room re-reads its tail, and the rooms whose entries could not be published are announced.
 * A commit goes out in payloads within the fan-out's bound; an envelope too large for one alone
 * is announced by the commit's last seq (a check), and the others read it from storage, as they
 * read any gap (sealed/room.ts fillGap): it was committed before it was published.
 */
import type { FastifyBaseLogger } from 'fastify';
import { entriesPayloads, readCheckPayload, readEntriesPayload, readPeerPayload, readPresencePayload, writeCheckPayload, writePeerPayload, writePresencePayload } from './bus-payload.js';
import type { SealedBusKind, SealedFanout } from './fanout.js';
import type { SealedRoom } from './room.js';

export interface SealedRemoteOptions {
  fanout: SealedFanout;
  /** the rooms in memory (the registry's) */
  rooms: ReadonlyMap<string, SealedRoom>;
  log: FastifyBaseLogger;
  /** after an outage, for each held room: re-read its tail (room.fillGap by default; the registry checks the generation first) */
  resync?: (room: SealedRoom) => void;
}

export class SealedRemote {
  /** rooms being read from storage, with what other instances told meanwhile */
  private readonly arriving = new Map<string, Array<{ kind: SealedBusKind; payload: Uint8Array }>>();
  /** rooms whose committed entries could not be published */
  private readonly missed = new Set<string>();

  constructor(private readonly opts: SealedRemoteOptions) {
    opts.fanout.onResync(() => this.catchUp());
  }

  /** Before the room's head is read from storage: listen, and hold back what arrives. */
  async subscribe(name: string): Promise<void> {
    this.arriving.set(name, []);
    await this.opts.fanout.subscribe(name, (kind, payload) => this.received(name, kind, payload));
  }

  /** The room is in memory: apply what arrived while it loaded, ask the others for their presence. */
  loaded(room: SealedRoom): void {
    const arrived = this.arriving.get(room.name) ?? [];
    this.arriving.delete(room.name);
    for (const { kind, payload } of arrived) this.received(room.name, kind, payload);
    this.opts.fanout.publish(room.name, 'presence-query');
  }

  /** The room left memory, or failed to load. */
  unsubscribe(name: string): void {
    this.arriving.delete(name);
    this.opts.fanout.unsubscribe(name);
  }

  /** Committed entries (after the commit, with their seq). */
  entries(room: string, firstSeq: number, envelopes: readonly Uint8Array[]): void {
    const { payloads, complete } = entriesPayloads(firstSeq, envelopes, this.opts.fanout.maxPayloadBytes);
    let sent = true;
    for (const payload of payloads) sent = this.opts.fanout.publish(room, 'entries', payload) && sent;
    if (!complete) sent = this.opts.fanout.publish(room, 'check', writeCheckPayload(firstSeq + envelopes.length - 1)) && sent;
    if (!sent) this.missed.add(room);
  }

  presence(room: string, peer: number, envelope: Uint8Array): void {
    this.opts.fanout.publish(room, 'presence', writePresencePayload(peer, envelope));
  }

  peerLeft(room: string, peer: number): void {
    this.opts.fanout.publish(room, 'peer-left', writePeerPayload(peer));
  }

  private received(name: string, kind: SealedBusKind, payload: Uint8Array): void {
    const pending = this.arriving.get(name);
    if (pending) return void pending.push({ kind, payload });
    const room = this.opts.rooms.get(name);
    if (!room || room.unloaded) return;
    if (!this.apply(room, kind, payload)) this.opts.log.warn({ kind, room: name }, 'malformed sealed bus payload dropped');
  }

  /** false when the payload is malformed */
  private apply(room: SealedRoom, kind: SealedBusKind, payload: Uint8Array): boolean {
    switch (kind) {
      case 'entries': {
        const entries = readEntriesPayload(payload);
        if (entries) room.deliver(entries);
        return entries !== null;
      }
      case 'presence': {
        const p = readPresencePayload(payload);
        if (p) room.setPresence(p.peer, p.envelope);
        return p !== null;
      }
      case 'peer-left': {
        const peer = readPeerPayload(payload);
        if (peer !== null) room.remoteLeft(peer);
        return peer !== null;
      }
      case 'presence-query':
        for (const peer of room.conns.keys()) {
          const p = room.presence.get(peer);
          if (p) this.presence(room.name, peer, p.envelope);
        }
        return true;
      case 'check': {
        // a last seq this room has delivered already: nothing to read
        const through = readCheckPayload(payload);
        if (through !== null && through > room.head) room.fillGap();
        return through !== null;
      }
    }
  }

  /** After an outage: re-read every held room's tail; tell the others what we could not publish. */
  private catchUp(): void {
    const resync = this.opts.resync ?? ((room: SealedRoom) => room.fillGap());
    for (const room of this.opts.rooms.values()) resync(room);
    for (const room of this.missed) if (this.opts.fanout.publish(room, 'check')) this.missed.delete(room);
  }
}

/**
 * Presence over the sealed path: this device's own awareness state goes out sealed; others'
 * arrive from the server tagged with their connection (`peer`), so when the server says that
 * connection left, the awareness states it announced are dropped at once rather than after the
 * 30 s awareness timeout.
 */
import { applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates, type Awareness } from 'y-protocols/awareness';
import { reclaimOwnState, screenAwarenessUpdate } from '../awareness-guard.js';

/**
 * Client ids one server connection (`peer`) may name here, as the server caps them on /relay
 * (RELAY_MAX_AWARENESS_STATES, default 4). The server cannot read sealed presence, so the cap is
 * the device's: a key holder (a read-only member too) sealing thousands of ids per envelope, at the
 * message rate, otherwise piled up states on every device until the awareness timeout. A real
 * device announces its own id only (own()); entries for further ids are dropped.
 */
export const SEALED_MAX_CLIENTS_PER_PEER = 4;

export class SealedPresence {
  /** server peer -> the awareness client ids it announced */
  private readonly byPeer = new Map<number, Set<number>>();

  constructor(
    private readonly awareness: Awareness,
    private readonly origin: unknown,
    /** a WebRTC peer still carries this client: its state stays when the server says its connection left (relay-presence.ts) */
    private readonly carriedElsewhere: (client: number) => boolean = () => false,
  ) {}

  /** This device's state as an awareness update, or null when it has none to announce. */
  own(): Uint8Array | null {
    const id = this.awareness.clientID;
    if (!this.awareness.meta.has(id)) return null;
    return encodeAwarenessUpdate(this.awareness, [id]);
  }

  /** Whether an awareness change concerns this device's own state. */
  concernsOwn(changed: readonly number[]): boolean {
    return changed.includes(this.awareness.clientID);
  }

  /**
   * An opened presence update from `peer`; throws if it is not an awareness update. Any key
   * holder (a read-only member too) can seal one: entries naming this device, with a clock past
   * the limit, or removing a client with no state here are dropped first (awareness-guard.ts).
   */
  apply(peer: number, update: Uint8Array): void {
    let known = this.byPeer.get(peer);
    if (!known) this.byPeer.set(peer, (known = new Set()));
    const ids = known;
    const screened = screenAwarenessUpdate(update, this.awareness, true, (id) => {
      if (ids.has(id)) return true;
      if (ids.size >= SEALED_MAX_CLIENTS_PER_PEER) return false;
      ids.add(id);
      return true;
    });
    const kept = screened.update ?? update;
    applyAwarenessUpdate(this.awareness, kept, this.origin);
    reclaimOwnState(this.awareness, screened.ownClaim);
  }

  left(peer: number): void {
    const ids = this.byPeer.get(peer);
    this.byPeer.delete(peer);
    const gone = [...(ids ?? [])].filter((id) => !this.carriedElsewhere(id));
    if (gone.length > 0) removeAwarenessStates(this.awareness, gone, this.origin);
  }

  /** The socket closed: everyone learned through it is gone (as y-websocket does on close). */
  clear(): void {
    for (const peer of [...this.byPeer.keys()]) this.left(peer);
  }
}

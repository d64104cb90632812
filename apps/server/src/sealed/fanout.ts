/**
 * Sealed rooms across instances: in-process (nothing to do) or through Redis
 * (redis-fanout.ts). The room delivers to its own connections; the fan-out only tells the other
 * instances, and feeds what they tell back into SealedRoom.deliver / remotePresence / remoteLeft.
 */
import type { SealedRoom } from './room.js';

/** What a fan-out reads of the registry (an interface, so this file does not import registry.ts). */
export interface SealedRooms {
  readonly rooms: ReadonlyMap<string, SealedRoom>;
}

export interface SealedFanout {
  /** committed entries (after the commit, with their seq) */
  entries(room: string, firstSeq: number, envelopes: readonly Uint8Array[]): void;
  presence(room: string, peer: number, envelope: Uint8Array): void;
  peerLeft(room: string, peer: number): void;
  /** before the room's head is read from storage: start listening, so nothing is missed */
  beforeLoad(room: string): Promise<void>;
  /** the room is in memory: deliver what arrived meanwhile, ask the others for their presence */
  afterLoad(room: SealedRoom): void;
  unloaded(room: string): void;
  bind(registry: SealedRooms): void;
}

export class LocalSealedFanout implements SealedFanout {
  entries(): void {}
  presence(): void {}
  peerLeft(): void {}
  async beforeLoad(): Promise<void> {}
  afterLoad(): void {}
  unloaded(): void {}
  bind(): void {}
}

/** Sealed rooms as an admin API source: figures from the sealed store, deletes through the registry. */
import type { HeardDelete, Purged, RoomAdminSource, StoredRoomFigures } from '../admin/room-source.js';
import type { SealedRegistry } from './registry.js';

export class SealedRoomSource implements RoomAdminSource {
  constructor(private readonly registry: SealedRegistry) {}

  async list(prefix: string, after: string, limit: number): Promise<StoredRoomFigures[]> {
    return (await this.registry.store.listRooms(prefix, after, limit)).map((f) => ({ ...f, sealed: true }));
  }

  async stat(room: string): Promise<StoredRoomFigures | null> {
    const f = await this.registry.store.statRoom(room);
    return f ? { ...f, sealed: true } : null;
  }

  connections(room: string): number {
    const r = this.registry.rooms.get(room);
    return r && !r.unloaded ? r.conns.size : 0;
  }

  async purge(room: string, heard?: HeardDelete): Promise<Purged> {
    // only the instance the delete came to touches storage (registry.ts purge says why); a sealed
    // room reads its generation from storage when told (registry.ts heardDelete)
    return { closed: await this.registry.purge(room, heard === undefined) };
  }
}

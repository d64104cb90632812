/** The relay's rooms as an admin API source: figures from the engine, deletes through the registry. */
import type { HeardDelete, Purged, RoomAdminSource, StoredRoomFigures } from '../admin/room-source.js';
import type { EngineStore } from './persistence/types.js';
import type { RoomRegistry } from './room-registry.js';

export class RelayRoomSource implements RoomAdminSource {
  constructor(
    private readonly store: EngineStore,
    private readonly registry: RoomRegistry,
  ) {}

  async list(prefix: string, after: string, limit: number): Promise<StoredRoomFigures[]> {
    return (await this.store.listRooms(prefix, after, limit)).map((s) => ({ ...s, sealed: false }));
  }

  async stat(room: string): Promise<StoredRoomFigures | null> {
    const s = await this.store.statRoom(room);
    return s ? { ...s, sealed: false } : null;
  }

  connections(room: string): number {
    const r = this.registry.rooms.get(room);
    return r && !r.unloaded ? r.conns.size : 0;
  }

  purge(room: string, heard?: HeardDelete): Promise<Purged> {
    // only the instance the delete came to touches storage (RoomRegistry.purge says why)
    if (!heard) return this.registry.purge(room, (name) => this.store.purgeRoom(name));
    return this.registry.purge(room, null, heard.relayGeneration);
  }
}

/**
 * What the admin API needs of each kind of room storage (the relay's rooms today, sealed rooms
 * when they exist): list and inspect what is stored, count local sockets, and delete a room on
 * this instance. Each kind registers one source with the AdminHub.
 */
export interface StoredRoomFigures {
  room: string;
  sealed: boolean;
  bytes: number;
  entries: number;
  /** unix ms, or null when storage has no record of it */
  lastChangeAt: number | null;
}

export interface RoomFigures extends StoredRoomFigures {
  /** sockets open on this room, summed over the instances (admin/hub.ts) */
  connections: number;
}

/** A delete made on another instance, as its admin bus message tells it (admin/hub.ts AdminOp). */
export interface HeardDelete {
  /**
   * the relay room's generation after that instance's purge (relay/persistence/types.ts
   * purgeRoom); absent in a message from an instance of the version before
   */
  relayGeneration?: number;
}

/** What a delete did on this instance. */
export interface Purged {
  /** sockets closed */
  closed: number;
  /** relay rooms, on the instance that purged storage: the room's new generation, told to the others */
  relayGeneration?: number;
}

export interface RoomAdminSource {
  /** stored rooms in name (byte) order: names starting with `prefix`, after `after` */
  list(prefix: string, after: string, limit: number): Promise<StoredRoomFigures[]>;
  /** null when nothing is stored */
  stat(room: string): Promise<StoredRoomFigures | null>;
  /** sockets open on the room on this instance */
  connections(room: string): number;
  /**
   * On this instance: close the room's sockets with 4410, forget it in memory and drop its
   * uncommitted writes, wait until nothing can write it back, then delete what is stored.
   * Resolves with the number of sockets closed. `heard`: the delete came from another instance,
   * which purged the shared storage before telling; storage is left alone (the room may have
   * been written again through that instance since: a late purge would delete it), and a room
   * loaded here after that purge, in the new generation, is the new room and stays.
   */
  purge(room: string, heard?: HeardDelete): Promise<Purged>;
}

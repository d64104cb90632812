/**
 * Redis channel names. Every name starts with REDIS_PREFIX, so several deployments (or test
 * runs) can share one Redis. One channel per signaling topic and per relay room: an instance
 * subscribes only to what its own connections use.
 */
export interface RedisKeys {
  signalTopic(topic: string): string;
  relayRoom(room: string): string;
  sealedRoom(room: string): string;
  /** admin operations between instances (admin/admin-bus.ts) */
  admin(): string;
  /** a key held while one instance sends a room's webhook event for a change burst */
  webhookBurst(room: string): string;
  /** a hash of every live instance's status figures, one field per instance (status/cluster.ts) */
  status(): string;
  /** one token sub's new rooms in the last hour (limits/new-rooms.ts); the caller hashes the sub */
  newRooms(subHash: string): string;
}

export function redisKeys(prefix: string): RedisKeys {
  return {
    signalTopic: (topic) => `${prefix}signal:${topic}`,
    relayRoom: (room) => `${prefix}relay:${room}`,
    sealedRoom: (room) => `${prefix}sealed:${room}`,
    admin: () => `${prefix}admin`,
    webhookBurst: (room) => `${prefix}webhook:${room}`,
    status: () => `${prefix}status`,
    newRooms: (subHash) => `${prefix}newrooms:${subHash}`,
  };
}

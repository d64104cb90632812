/** SyncProvider's options and events. */
import type { Awareness } from 'y-protocols/awareness';
import type { FetchLike, IceServerConfig } from './ice-servers.js';
import type { SyncPersistence } from './persistence/types.js';
import type { StatusEvent } from './status.js';

export interface SyncProviderOptions {
  /** the sync server, `https://host[:port][/path]` (ws(s):// works too) */
  serverUrl: string;
  /** room name, `<prefix>-<type>-<id>` */
  room: string;
  /** a room token (JWT) for this room; called for every connection attempt and before expiry. Omit when the server runs without AUTH_SECRET. */
  getToken?: () => string | Promise<string>;
  /** encrypts y-webrtc signaling (and tab-to-tab sync) with a key derived from it; every device of the room needs the same one. With `sealed`, signaling is always encrypted (key derived from `sealed.key`) and this is mixed in */
  password?: string;
  /** one Awareness for both transports (default: a new one, destroyed with the provider) */
  awareness?: Awareness;
  /** simple-peer options, as y-webrtc's `peerOpts`: in Node pass `{ wrtc }`; `config.iceServers` is filled from /turn-credentials */
  peerOpts?: Record<string, unknown>;
  /** ICE servers used while /turn-credentials cannot be fetched (default none: host candidates only) */
  iceServers?: IceServerConfig[];
  /** how long to wait for a WebRTC peer before the relay connects (default 3000 ms) */
  relayGraceMs?: number;
  /** how long WebRTC must carry every device before the relay is released (default 15000 ms) */
  relayHoldMs?: number;
  /** a WebRTC peer that has not synced this long after it appeared is dropped and met again (default 10000 ms, plus up to half of it at random) */
  peerSyncTimeoutMs?: number;
  /** the largest awareness state (its JSON, in bytes) taken from a WebRTC peer; larger ones are dropped (default 16384, as the relay's RELAY_MAX_AWARENESS_BYTES) */
  webrtcMaxAwarenessBytes?: number;
  /** ask for a new token this long before the current one expires (default 60000 ms) */
  tokenRefreshMarginMs?: number;
  /** timeout of GET /turn-credentials (default 5000 ms) */
  credentialsTimeoutMs?: number;
  /** WS /signal somewhere else than `<serverUrl>/signal` (a proxy that maps it elsewhere) */
  signalingUrl?: string;
  /** y-webrtc's maxConns */
  maxConns?: number;
  /** WebSocket class; needed on Node < 22 (e.g. the `ws` package), where it is also installed as the global y-webrtc uses */
  WebSocket?: unknown;
  /** fetch implementation (default globalThis.fetch) */
  fetch?: FetchLike;
  /** the server's room policy, when it sets ROOM_PREFIX or ROOM_TYPES (default: the server's defaults, README "Configuration") */
  roomPolicy?: RoomNamePolicy;
  /** a sealed room: the relay path goes to WS /sealed/<room> and everything on it is end-to-end encrypted (see src/sealed/) */
  sealed?: SealedOptions;
  /** keeps the document on this device across restarts: loaded before any socket opens, every change stored; closed by destroy() */
  persistence?: SyncPersistence;
}

/** The server's ROOM_PREFIX / ROOM_TYPES (the server's own type has this shape; declared here so the published types stand alone). */
export interface RoomNamePolicy {
  /** allowed room types */
  types: readonly string[];
  /** if set, a room's prefix must equal it */
  prefix?: string | undefined;
}

export interface SealedOptions {
  /** 32 bytes shared by the room's devices (the app distributes it); every write is sealed with it */
  key: Uint8Array;
  /** keys before a rotation: still accepted when reading */
  previousKeys?: Uint8Array[];
  /** how long own updates are merged into one envelope (default 40 ms) */
  mergeMs?: number;
  /**
   * the server's RELAY_MAX_MESSAGE_BYTES (default 10 MiB, the server's default): updates are
   * merged only up to it; one that alone is over it is reported and kept on the device. A server
   * that closes a frame with 1009 lowers it for the session
   */
  maxMessageBytes?: number;
  /**
   * Entries this device cannot apply (a key id it does not hold: a later rotation's key, or junk
   * from a writer without the key) are carried inside its snapshots, so compaction goes past
   * them, and a device holding that key opens them when it loads the snapshot. Bounds, the oldest
   * dropped first: `maxEnvelopes` (64), `maxBytes` (262144), `maxAgeSeqs` (10000: dropped from
   * snapshots covering more than seq + this). docs/PROTOCOL-sealed.md, "Carried envelopes"
   */
  carry?: { maxEnvelopes?: number; maxBytes?: number; maxAgeSeqs?: number };
}

export interface SyncProviderError {
  /** what failed */
  source: 'token' | 'turn-credentials' | 'signaling' | 'webrtc' | 'relay' | 'sealed' | 'persistence';
  message: string;
  /** the WebSocket close code, when the server refused a socket */
  code?: number;
}

export interface SyncProviderEvents {
  status: (event: StatusEvent) => void;
  /** true once the document has synced over WebRTC or the relay; false when neither path is synced */
  synced: (synced: boolean) => void;
  error: (error: SyncProviderError) => void;
}

/** What one relay update may cost, from configuration (README "Server", docs/limits.md). */
import { serverEnvSchema, type ServerConfig } from '@sync-suite/shared/node';
import { presenceEntryLimit, type PresenceLimits } from './presence.js';

export interface UpdateLimits {
  /** nesting depth of shared types (Yjs deletes and garbage-collects nested types recursively) */
  maxDepth: number;
  /** structs (items, GC and skip runs, client sections) in one update */
  maxStructs: number;
  /** ranges in one update's delete set */
  maxDeleteRanges: number;
  /** clients named by one update's delete set */
  maxDeleteClients: number;
  /** sub-documents (each becomes a Y.Doc on the server) in one update */
  maxSubdocs: number;
  /** bytes of strings, binaries, JSON and values in one update */
  maxContentBytes: number;
  /** bytes of one map key, root type name, XML node name, format key or sub-document guid */
  maxKeyBytes: number;
  /** nesting depth of one JSON or Any value (lib0 and JSON.stringify recurse on them) */
  maxValueDepth: number;
  /** bytes of structs and deletions a room may hold that cannot apply yet (missing dependencies) */
  maxPendingBytes: number;
  /** bytes of deletions a room may hold that cannot apply yet (Yjs retries them on every update) */
  maxPendingDeleteBytes: number;
  /** clients a sync step 1's state vector may name beyond those the room's document has */
  maxStateVectorClients: number;
  /**
   * The two pending limits count only what the room holds already, not the update's own bytes:
   * for a message merging updates each checked as one where it was accepted (relay/room.ts
   * remoteMessageLimits). Its size says nothing of what it leaves waiting.
   */
  pendingHeldOnly?: boolean;
}

export function updateLimitsFrom(config: ServerConfig): UpdateLimits {
  return {
    maxDepth: config.RELAY_MAX_UPDATE_DEPTH,
    maxStructs: config.RELAY_MAX_UPDATE_STRUCTS,
    maxDeleteRanges: config.RELAY_MAX_UPDATE_DELETE_RANGES,
    maxDeleteClients: config.RELAY_MAX_UPDATE_DELETE_CLIENTS,
    maxSubdocs: config.RELAY_MAX_UPDATE_SUBDOCS,
    maxContentBytes: config.RELAY_MAX_UPDATE_CONTENT_BYTES,
    maxKeyBytes: config.RELAY_MAX_KEY_BYTES,
    maxValueDepth: config.RELAY_MAX_VALUE_DEPTH,
    maxPendingBytes: config.RELAY_MAX_PENDING_BYTES,
    maxPendingDeleteBytes: config.RELAY_MAX_PENDING_DELETE_BYTES,
    maxStateVectorClients: config.RELAY_MAX_STATE_VECTOR_CLIENTS,
  };
}

/** The defaults of the configuration, for callers without a config (tools, tests). */
export const DEFAULT_UPDATE_LIMITS: UpdateLimits = updateLimitsFrom(serverEnvSchema.parse({}) as ServerConfig);

export function presenceLimitsFrom(config: ServerConfig): PresenceLimits {
  return {
    maxStateBytes: config.RELAY_MAX_AWARENESS_BYTES,
    maxStatesPerConnection: config.RELAY_MAX_AWARENESS_STATES,
    maxValueDepth: config.RELAY_MAX_VALUE_DEPTH,
    maxEntries: presenceEntryLimit(config.MAX_PEERS_PER_ROOM, config.RELAY_MAX_AWARENESS_STATES),
  };
}

export const DEFAULT_PRESENCE_LIMITS: PresenceLimits = presenceLimitsFrom(serverEnvSchema.parse({}) as ServerConfig);

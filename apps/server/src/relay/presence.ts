/**
 * Presence (awareness) input, bounded before it is paid: a streaming read of an awareness update's
 * entry headers (client id, clock, state length) that refuses a message announcing more entries
 * than a room can honestly hold before reading any, and the check of one state's size, nesting
 * and JSON, paid only for the entries a connection may apply (relay/room.ts applyAwareness):
 * y-protocols re-encodes states with JSON.stringify, which recurses. The entries a connection
 * may apply are encoded again by encodeAwarenessEntries (packages/shared/src/protocol/relay.ts).
 * Format: y-protocols/awareness.js (encodeAwarenessUpdate).
 */
import { isNullJson } from '@sync-suite/shared';
import { readVarUint } from './varuint.js';

export interface PresenceLimits {
  /** bytes of one client's state (its JSON text) */
  maxStateBytes: number;
  /** client ids one connection may introduce */
  maxStatesPerConnection: number;
  /** nesting depth of a state */
  maxValueDepth: number;
  /** entries in one awareness update (presenceEntryLimit: what a stock client in a full room echoes, with room to spare) */
  maxEntries: number;
}

/**
 * Entries one awareness update may hold. Stock y-websocket clients (2.x and 3.x) send, on every
 * awareness change, an update naming every client id that changed, their own and the ones they
 * heard (a newcomer echoes the whole room it was told about at once). A room holds at most
 * MAX_PEERS_PER_ROOM connections of RELAY_MAX_AWARENESS_STATES ids each; four times that covers
 * removals of states that left meanwhile and ids heard over WebRTC (packages/client).
 */
export function presenceEntryLimit(maxPeersPerRoom: number, maxStatesPerConnection: number): number {
  return 4 * maxPeersPerRoom * maxStatesPerConnection;
}

export class PresenceRefused extends Error {
  constructor(
    readonly limit: 'malformed' | 'awareness_bytes' | 'value_depth' | 'awareness_entries',
    detail: string,
  ) {
    super(detail);
    this.name = 'PresenceRefused';
  }
}

export interface PresenceEntry {
  clientID: number;
  clock: number;
  /** the state as UTF-8 JSON text ("null": removed); from readPresence, not checked until checkPresenceState */
  json: Uint8Array;
  removed: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The entries of an awareness update, their states not read: refuses (PresenceRefused) an update
 * with more than maxEntries entries before reading them, a state longer than maxStateBytes, and
 * truncated or trailing bytes. `removed` is what y-protocols takes it for (JSON.parse gives null)
 * when the state is valid JSON; checkPresenceState checks that before an entry is applied.
 */
export function readPresence(update: Uint8Array, limits: PresenceLimits, maxEntries = limits.maxEntries): PresenceEntry[] {
  const at = { pos: 0 };
  const refuse = (limit: PresenceRefused['limit'], detail: string): never => {
    throw new PresenceRefused(limit, detail);
  };
  const uint = (): number => {
    const n = readVarUint(update, at);
    return n >= 0 ? n : refuse('malformed', at.pos >= update.length ? 'truncated awareness update' : 'integer out of range');
  };
  const count = uint();
  if (count > maxEntries) refuse('awareness_entries', `more than ${maxEntries} entries in one awareness update`);
  const entries: PresenceEntry[] = [];
  for (let i = 0; i < count; i++) {
    const clientID = uint();
    const clock = uint();
    const len = uint();
    if (len > limits.maxStateBytes) refuse('awareness_bytes', `a presence state larger than ${limits.maxStateBytes} bytes`);
    if (at.pos + len > update.length) refuse('malformed', 'truncated awareness update');
    const state = update.subarray(at.pos, at.pos + len);
    at.pos += len;
    entries.push({ clientID, clock, json: state, removed: isNullJson(state) });
  }
  if (at.pos !== update.length) refuse('malformed', 'trailing bytes in awareness update');
  return entries;
}

/** Throws PresenceRefused when the state is nested deeper than maxValueDepth, or is not UTF-8 JSON. */
export function checkPresenceState(entry: PresenceEntry, limits: PresenceLimits): void {
  if (jsonDepth(entry.json) > limits.maxValueDepth) throw new PresenceRefused('value_depth', `a presence state nested deeper than ${limits.maxValueDepth}`);
  try {
    JSON.parse(utf8.decode(entry.json));
  } catch {
    throw new PresenceRefused('malformed', 'presence state is not JSON');
  }
}

/** Whether JSON text is `null` (JSON.parse gives null): the literal with JSON whitespace around it. */
/**
 * The entries of one awareness update that change something, at most one per client id. Each
 * entry is taken as y-protocols' applyAwarenessUpdate takes it — a newer clock than the one held,
 * or a removal at the same clock of a state that is held — in the update's order, and for each id
 * only the last one taken is kept: applying the result leaves the same states and clocks as
 * applying the whole update, and an entry repeated or not newer costs receivers nothing.
 * `clockOf`: the clock held for an id (undefined: none); `holds`: whether a state is held for it.
 */
export function changedPresence(
  entries: readonly PresenceEntry[],
  clockOf: (clientID: number) => number | undefined,
  holds: (clientID: number) => boolean,
): PresenceEntry[] {
  const seen = new Map<number, { clock: number; present: boolean; taken: PresenceEntry | null }>();
  for (const e of entries) {
    let held = seen.get(e.clientID);
    if (held === undefined) {
      held = { clock: clockOf(e.clientID) ?? 0, present: holds(e.clientID), taken: null };
      seen.set(e.clientID, held);
    }
    if (held.clock < e.clock || (held.clock === e.clock && e.removed && held.present)) {
      held.clock = e.clock;
      held.present = !e.removed;
      held.taken = e;
    }
  }
  const out: PresenceEntry[] = [];
  for (const held of seen.values()) if (held.taken !== null) out.push(held.taken);
  return out;
}

/** Deepest bracket nesting of JSON text, outside strings. */
export function jsonDepth(raw: Uint8Array): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as number;
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

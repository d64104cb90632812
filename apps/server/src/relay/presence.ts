/**
 * Presence (awareness) input, bounded before it is paid: a streaming read of an awareness update
 * that checks each state's size and nesting before parsing it (y-protocols re-encodes states
 * with JSON.stringify, which recurses), and the encoding of the entries a connection may apply.
 * Format: y-protocols/awareness.js (encodeAwarenessUpdate).
 */
import * as encoding from 'lib0/encoding';

export interface PresenceLimits {
  /** bytes of one client's state (its JSON text) */
  maxStateBytes: number;
  /** client ids one connection may introduce */
  maxStatesPerConnection: number;
  /** nesting depth of a state */
  maxValueDepth: number;
}

export class PresenceRefused extends Error {
  constructor(
    readonly limit: 'malformed' | 'awareness_bytes' | 'value_depth',
    detail: string,
  ) {
    super(detail);
    this.name = 'PresenceRefused';
  }
}

export interface PresenceEntry {
  clientID: number;
  clock: number;
  /** the state as JSON text ("null": removed) */
  json: string;
  removed: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function readPresence(update: Uint8Array, limits: PresenceLimits): PresenceEntry[] {
  let pos = 0;
  const refuse = (limit: PresenceRefused['limit'], detail: string): never => {
    throw new PresenceRefused(limit, detail);
  };
  const uint = (): number => {
    let num = 0;
    let mult = 1;
    for (;;) {
      if (pos >= update.length) return refuse('malformed', 'truncated awareness update');
      const b = update[pos++] as number;
      num += (b & 0x7f) * mult;
      if (b < 0x80) return num;
      mult *= 128;
      if (mult > Number.MAX_SAFE_INTEGER) refuse('malformed', 'integer out of range');
    }
  };
  const count = uint();
  const entries: PresenceEntry[] = [];
  for (let i = 0; i < count; i++) {
    const clientID = uint();
    const clock = uint();
    const len = uint();
    if (len > limits.maxStateBytes) refuse('awareness_bytes', `a presence state larger than ${limits.maxStateBytes} bytes`);
    if (pos + len > update.length) refuse('malformed', 'truncated awareness update');
    const raw = update.subarray(pos, pos + len);
    pos += len;
    if (jsonDepth(raw) > limits.maxValueDepth) refuse('value_depth', `a presence state nested deeper than ${limits.maxValueDepth}`);
    let json = '';
    let state: unknown;
    try {
      json = utf8.decode(raw);
      state = JSON.parse(json);
    } catch {
      refuse('malformed', 'presence state is not JSON');
    }
    entries.push({ clientID, clock, json, removed: state === null });
  }
  if (pos !== update.length) refuse('malformed', 'trailing bytes in awareness update');
  return entries;
}

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

export function encodePresence(entries: readonly PresenceEntry[]): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, entries.length);
  for (const entry of entries) {
    encoding.writeVarUint(e, entry.clientID);
    encoding.writeVarUint(e, entry.clock);
    encoding.writeVarString(e, entry.json);
  }
  return encoding.toUint8Array(e);
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

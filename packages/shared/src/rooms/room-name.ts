/**
 * Room names: `<prefix>-<type>-<id>` (README "Endpoints").
 * The type is the first `-`-separated segment that is one of the allowed types;
 * what stands before it is the prefix, what follows is the id (which may contain `-`).
 */

export const DEFAULT_ROOM_TYPES = ['conversation', 'assistant', 'preference'] as const;
export const MAX_ROOM_NAME_LENGTH = 255;

const PREFIX_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
/** Every character a room name can hold (prefix, types and id together). */
const ROOM_NAME_CHARACTERS_RE = /^[A-Za-z0-9_.:-]*$/;

/** True if `text` holds only characters a room name can hold (for name prefixes and cursors). */
export function hasOnlyRoomNameCharacters(text: string): boolean {
  return ROOM_NAME_CHARACTERS_RE.test(text);
}

export interface RoomNamePolicy {
  /** allowed types, in any order */
  types: readonly string[];
  /** if set, the prefix must equal it */
  prefix?: string | undefined;
}

export interface RoomName {
  prefix: string;
  type: string;
  id: string;
  name: string;
}

export type RoomNameResult = { ok: true; room: RoomName } | { ok: false; reason: string };

export const defaultRoomPolicy: RoomNamePolicy = { types: DEFAULT_ROOM_TYPES };

export function parseRoomName(name: string, policy: RoomNamePolicy = defaultRoomPolicy): RoomNameResult {
  if (typeof name !== 'string' || name.length === 0) return { ok: false, reason: 'empty room name' };
  if (name.length > MAX_ROOM_NAME_LENGTH) return { ok: false, reason: `room name longer than ${MAX_ROOM_NAME_LENGTH}` };
  const segments = name.split('-');
  // The type can never be the first segment: the prefix is at least one character.
  for (let i = 1; i < segments.length - 1; i++) {
    const type = segments[i] as string;
    if (!policy.types.includes(type)) continue;
    const prefix = segments.slice(0, i).join('-');
    const id = segments.slice(i + 1).join('-');
    if (!PREFIX_RE.test(prefix)) return { ok: false, reason: 'invalid prefix' };
    if (policy.prefix !== undefined && prefix !== policy.prefix) return { ok: false, reason: 'prefix not allowed' };
    if (!ID_RE.test(id)) return { ok: false, reason: 'invalid id' };
    return { ok: true, room: { prefix, type, id, name } };
  }
  return { ok: false, reason: 'no known room type' };
}

export function buildRoomName(
  parts: { prefix: string; type: string; id: string },
  policy: RoomNamePolicy = defaultRoomPolicy,
): string {
  const name = `${parts.prefix}-${parts.type}-${parts.id}`;
  const parsed = parseRoomName(name, policy);
  if (!parsed.ok) throw new RangeError(`invalid room name: ${parsed.reason}`);
  // A prefix that itself contains a type segment would parse differently: refuse it.
  if (parsed.room.prefix !== parts.prefix || parsed.room.type !== parts.type) {
    throw new RangeError('invalid room name: prefix contains a room type segment');
  }
  return name;
}

import { describe, expect, it } from 'vitest';
import { MAX_ROOM_NAME_LENGTH, buildRoomName, parseRoomName, type RoomNamePolicy } from '../../src/rooms/room-name.js';

const UUID = '7f3c2a10-9d4e-4c1b-8a57-0e4f5d6c7b8a';

describe('parseRoomName: accepted names', () => {
  const cases: Array<[string, { prefix: string; type: string; id: string }]> = [
    [`the-boss-conversation-${UUID}`, { prefix: 'the-boss', type: 'conversation', id: UUID }],
    ['a-assistant-x', { prefix: 'a', type: 'assistant', id: 'x' }],
    ['app1-preference-user:42', { prefix: 'app1', type: 'preference', id: 'user:42' }],
    ['p-conversation-A.b_c:d-e', { prefix: 'p', type: 'conversation', id: 'A.b_c:d-e' }],
    // the first type segment wins; later ones belong to the id
    ['p-conversation-assistant-1', { prefix: 'p', type: 'conversation', id: 'assistant-1' }],
    // The id alphabet allows dots, so `..` alone is a valid id (it is never a path)
    ['p-conversation-..', { prefix: 'p', type: 'conversation', id: '..' }],
    ['p_q-conversation-1', { prefix: 'p_q', type: 'conversation', id: '1' }],
    [`${'a'.repeat(32)}-conversation-${'i'.repeat(128)}`, { prefix: 'a'.repeat(32), type: 'conversation', id: 'i'.repeat(128) }],
  ];
  it.each(cases)('%s', (name, parts) => {
    const result = parseRoomName(name);
    expect(result).toEqual({ ok: true, room: { ...parts, name } });
  });
});

describe('parseRoomName: refused names', () => {
  const cases: Array<[string, string, string]> = [
    ['empty', '', 'empty room name'],
    ['no type', 'the-boss-chat-1', 'no known room type'],
    ['type only', 'conversation', 'no known room type'],
    ['type first (empty prefix)', '-conversation-1', 'invalid prefix'],
    ['type is the last segment (no id)', 'p-conversation', 'no known room type'],
    ['empty id', 'p-conversation-', 'invalid id'],
    ['unicode id', 'p-conversation-caf\u00e9', 'invalid id'],
    ['emoji id', 'p-conversation-\u{1F600}', 'invalid id'],
    ['unicode prefix', '\u00fcber-conversation-1', 'invalid prefix'],
    ['path traversal', 'p-conversation-../etc/passwd', 'invalid id'],
    ['path traversal in prefix', '..-conversation-1', 'invalid prefix'],
    ['encoded slash', 'p-conversation-a%2Fb', 'invalid id'],
    ['slash', 'p-conversation-a/b', 'invalid id'],
    ['space', 'p-conversation-a b', 'invalid id'],
    ['uppercase prefix', 'The-conversation-1', 'invalid prefix'],
    ['prefix too long', `${'a'.repeat(33)}-conversation-1`, 'invalid prefix'],
    ['id too long', `p-conversation-${'i'.repeat(129)}`, 'invalid id'],
    ['over 255 characters', `p-conversation-${'i'.repeat(300)}`, `room name longer than ${MAX_ROOM_NAME_LENGTH}`],
    ['NUL byte', 'p-conversation-a\u0000', 'invalid id'],
    ['newline', 'p-conversation-a\n', 'invalid id'],
  ];
  it.each(cases)('%s', (_label, name, reason) => {
    expect(parseRoomName(name)).toEqual({ ok: false, reason });
  });

  it('refuses non-strings without throwing', () => {
    expect(parseRoomName(undefined as unknown as string).ok).toBe(false);
    expect(parseRoomName(42 as unknown as string).ok).toBe(false);
  });
});

describe('room name policy', () => {
  it('ROOM_TYPES decides which segment is the type', () => {
    const policy: RoomNamePolicy = { types: ['doc'] };
    expect(parseRoomName('p-doc-1', policy)).toMatchObject({ ok: true, room: { type: 'doc' } });
    expect(parseRoomName('p-conversation-1', policy)).toEqual({ ok: false, reason: 'no known room type' });
  });

  it('ROOM_PREFIX must match exactly', () => {
    const policy: RoomNamePolicy = { types: ['conversation'], prefix: 'the-boss' };
    expect(parseRoomName('the-boss-conversation-1', policy).ok).toBe(true);
    expect(parseRoomName('other-conversation-1', policy)).toEqual({ ok: false, reason: 'prefix not allowed' });
    expect(parseRoomName('the-boss-x-conversation-1', policy)).toEqual({ ok: false, reason: 'prefix not allowed' });
  });

  it('the 255-character limit holds even when every part is valid', () => {
    // Only a long custom type can push valid parts past 255: 32 + 1 + 100 + 1 + 128 = 262.
    const type = 't'.repeat(100);
    const policy: RoomNamePolicy = { types: [type] };
    const name = `${'p'.repeat(32)}-${type}-${'i'.repeat(128)}`;
    expect(name.length).toBeGreaterThan(MAX_ROOM_NAME_LENGTH);
    expect(parseRoomName(name, policy)).toEqual({ ok: false, reason: `room name longer than ${MAX_ROOM_NAME_LENGTH}` });
    const fits = `${'p'.repeat(32)}-${type}-${'i'.repeat(121)}`;
    expect(fits.length).toBe(MAX_ROOM_NAME_LENGTH);
    expect(parseRoomName(fits, policy).ok).toBe(true);
  });
});

describe('buildRoomName', () => {
  it('round-trips through parseRoomName, ids with `-` included', () => {
    const name = buildRoomName({ prefix: 'the-boss', type: 'conversation', id: UUID });
    expect(name).toBe(`the-boss-conversation-${UUID}`);
    expect(parseRoomName(name)).toEqual({ ok: true, room: { prefix: 'the-boss', type: 'conversation', id: UUID, name } });
  });

  it.each([
    ['empty prefix', { prefix: '', type: 'conversation', id: '1' }],
    ['empty id', { prefix: 'p', type: 'conversation', id: '' }],
    ['unknown type', { prefix: 'p', type: 'chat', id: '1' }],
    ['unicode id', { prefix: 'p', type: 'conversation', id: '\u00e9' }],
    ['traversal', { prefix: 'p', type: 'conversation', id: '../x' }],
    ['prefix containing a type segment', { prefix: 'my-conversation-app', type: 'conversation', id: '1' }],
  ])('throws RangeError for %s', (_label, parts) => {
    expect(() => buildRoomName(parts)).toThrow(RangeError);
  });

  it('respects the ROOM_PREFIX policy', () => {
    expect(() => buildRoomName({ prefix: 'other', type: 'conversation', id: '1' }, { types: ['conversation'], prefix: 'mine' })).toThrow(
      /prefix not allowed/,
    );
  });
});

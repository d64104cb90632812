import { CompactSign, SignJWT, UnsecuredJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  CLOCK_SKEW_SECONDS,
  createRoomToken,
  tokenCoversRoom,
  verifyRoomToken,
} from '../../src/auth/room-token.js';

const SECRET = 'a-room-token-secret-of-at-least-32-bytes';
const OTHER = 'another-secret-that-is-also-32-bytes-long';
const NOW = 1_800_000_000;
const key = new TextEncoder().encode(SECRET);
const ROOMS = ['the-boss-conversation-*'];

/** A token signed with SECRET and HS256 from hand-picked claims, to test what createRoomToken never makes. */
function sign(claims: Record<string, unknown>, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
}

describe('createRoomToken', () => {
  it('makes an HS256 JWT with sub, exp, rooms and scope', async () => {
    const token = await createRoomToken(SECRET, { sub: 'alice', rooms: ROOMS, ttlSeconds: 3600, now: NOW });
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'HS256' });
    expect(decodeJwt(token)).toMatchObject({ sub: 'alice', exp: NOW + 3600, iat: NOW, rooms: ROOMS, scope: 'write' });
    const read = await createRoomToken(SECRET, { sub: 'bob', rooms: ROOMS, ttlSeconds: 60, scope: 'read', now: NOW });
    expect(decodeJwt(read)['scope']).toBe('read');
  });

  it('refuses to make a token without sub or rooms', async () => {
    await expect(createRoomToken(SECRET, { sub: '', rooms: ROOMS, ttlSeconds: 60 })).rejects.toThrow(/sub/);
    await expect(createRoomToken(SECRET, { sub: 'a', rooms: [], ttlSeconds: 60 })).rejects.toThrow(/rooms/);
  });

  it('refuses to make a token whose sub or jti verifyRoomToken (and POST /admin/revoke) would refuse', async () => {
    await expect(createRoomToken(SECRET, { sub: 'u'.repeat(513), rooms: ROOMS, ttlSeconds: 60 })).rejects.toThrow(/sub/);
    await expect(createRoomToken(SECRET, { sub: 'eve\n', rooms: ROOMS, ttlSeconds: 60 })).rejects.toThrow(/sub/);
    await expect(createRoomToken(SECRET, { sub: 'a', jti: 'j\u0085', rooms: ROOMS, ttlSeconds: 60 })).rejects.toThrow(/jti/);
  });
});

describe('verifyRoomToken: accepted', () => {
  it('returns the claims of a valid token', async () => {
    const token = await createRoomToken(SECRET, { sub: 'alice', rooms: ROOMS, ttlSeconds: 3600, now: NOW });
    expect(await verifyRoomToken(token, [SECRET], { now: NOW + 10 })).toEqual({
      ok: true,
      claims: { sub: 'alice', exp: NOW + 3600, iat: NOW, jti: expect.any(String) as string, rooms: ROOMS, scope: 'write' },
    });
  });

  it('carries the jti it was given', async () => {
    const token = await createRoomToken(SECRET, { sub: 'alice', rooms: ROOMS, ttlSeconds: 60, now: NOW, jti: 'device-7' });
    expect(await verifyRoomToken(token, [SECRET], { now: NOW })).toMatchObject({ ok: true, claims: { jti: 'device-7' } });
  });

  it('accepts a sub and a jti of 512 characters, not ASCII ones included', async () => {
    const sub = 'é'.repeat(512);
    const token = await sign({ sub, jti: 'j'.repeat(512), exp: NOW + 60, rooms: ROOMS });
    expect(await verifyRoomToken(token, [SECRET], { now: NOW })).toMatchObject({ ok: true, claims: { sub, jti: 'j'.repeat(512) } });
  });
});

describe('verifyRoomToken: TOKEN_MAX_TTL_SECONDS', () => {
  const opts = { now: NOW, maxTtlSeconds: 3600 };
  it('accepts a token living exactly the limit', async () => {
    const token = await createRoomToken(SECRET, { sub: 'a', rooms: ROOMS, ttlSeconds: 3600, now: NOW });
    expect((await verifyRoomToken(token, [SECRET], opts)).ok).toBe(true);
  });

  it('refuses exp - iat above the limit', async () => {
    const token = await createRoomToken(SECRET, { sub: 'a', rooms: ROOMS, ttlSeconds: 3601, now: NOW });
    expect(await verifyRoomToken(token, [SECRET], opts)).toEqual({ ok: false, reason: 'ttl_too_long' });
  });

  it('refuses exp far ahead without iat, and exp: 1e300', async () => {
    expect(await verifyRoomToken(await sign({ sub: 'a', exp: NOW + 7200, rooms: ['x'] }), [SECRET], opts)).toEqual({ ok: false, reason: 'ttl_too_long' });
    expect(await verifyRoomToken(await sign({ sub: 'a', exp: 1e300, rooms: ['x'] }), [SECRET], opts)).toEqual({ ok: false, reason: 'ttl_too_long' });
    expect(await verifyRoomToken(await sign({ sub: 'a', exp: 1e300, iat: 1e300 - 10, rooms: ['x'] }), [SECRET], opts)).toEqual({ ok: false, reason: 'ttl_too_long' });
  });

  it('defaults scope to write when the claim is absent', async () => {
    const token = await sign({ sub: 'a', exp: NOW + 60, rooms: ['x'] });
    expect(await verifyRoomToken(token, [SECRET], { now: NOW })).toMatchObject({ ok: true, claims: { scope: 'write' } });
  });

  it('accepts a token signed with the previous secret during rotation', async () => {
    const old = await createRoomToken(OTHER, { sub: 'a', rooms: ROOMS, ttlSeconds: 60, now: NOW });
    expect((await verifyRoomToken(old, [SECRET, OTHER], { now: NOW })).ok).toBe(true);
    expect(await verifyRoomToken(old, [SECRET], { now: NOW })).toEqual({ ok: false, reason: 'bad_signature' });
  });
});

describe('verifyRoomToken: 30 s clock skew', () => {
  it(`accepts exp up to ${CLOCK_SKEW_SECONDS} s in the past and refuses beyond`, async () => {
    const token = await createRoomToken(SECRET, { sub: 'a', rooms: ROOMS, ttlSeconds: 60, now: NOW });
    const exp = NOW + 60;
    expect((await verifyRoomToken(token, [SECRET], { now: exp + CLOCK_SKEW_SECONDS - 1 })).ok).toBe(true);
    expect(await verifyRoomToken(token, [SECRET], { now: exp + CLOCK_SKEW_SECONDS + 1 })).toEqual({ ok: false, reason: 'expired' });
  });

  it(`accepts nbf up to ${CLOCK_SKEW_SECONDS} s in the future and refuses beyond`, async () => {
    const token = await sign({ sub: 'a', exp: NOW + 600, nbf: NOW + 100, rooms: ['x'] });
    expect((await verifyRoomToken(token, [SECRET], { now: NOW + 100 - CLOCK_SKEW_SECONDS + 1 })).ok).toBe(true);
    expect(await verifyRoomToken(token, [SECRET], { now: NOW + 100 - CLOCK_SKEW_SECONDS - 1 })).toEqual({
      ok: false,
      reason: 'not_yet_valid',
    });
  });
});

describe('verifyRoomToken: refused with a reason', () => {
  const valid = { sub: 'a', exp: NOW + 60, rooms: ['x'] };
  const cases: Array<[string, () => Promise<string> | string, string]> = [
    ['missing exp', () => sign({ sub: 'a', rooms: ['x'] }), 'missing_exp'],
    ['exp not a number', () => sign({ ...valid, exp: 'tomorrow' }), 'missing_exp'],
    ['expired', () => sign({ ...valid, exp: NOW - 3600 }), 'expired'],
    ['missing sub', () => sign({ exp: NOW + 60, rooms: ['x'] }), 'missing_sub'],
    ['empty sub', () => sign({ ...valid, sub: '' }), 'missing_sub'],
    // what POST /admin/revoke cannot name must not verify: a token nobody could revoke
    ['sub over 512 characters', () => sign({ ...valid, sub: 'u'.repeat(513) }), 'bad_sub'],
    ['sub with a newline', () => sign({ ...valid, sub: 'eve\n' }), 'bad_sub'],
    ['sub with a C1 control character', () => sign({ ...valid, sub: 'bob\u0085' }), 'bad_sub'],
    ['sub with NUL', () => sign({ ...valid, sub: 'a\u0000' }), 'bad_sub'],
    ['jti a number', () => sign({ ...valid, jti: 7 }), 'bad_jti'],
    ['jti an object', () => sign({ ...valid, jti: { a: 1 } }), 'bad_jti'],
    ['empty jti', () => sign({ ...valid, jti: '' }), 'bad_jti'],
    ['jti over 512 characters', () => sign({ ...valid, jti: 'j'.repeat(513) }), 'bad_jti'],
    ['jti with DEL', () => sign({ ...valid, jti: 'j\u007f' }), 'bad_jti'],
    ['missing rooms', () => sign({ sub: 'a', exp: NOW + 60 }), 'missing_rooms'],
    ['empty rooms', () => sign({ ...valid, rooms: [] }), 'missing_rooms'],
    ['rooms not a list', () => sign({ ...valid, rooms: 'x' }), 'missing_rooms'],
    ['rooms with a non-string', () => sign({ ...valid, rooms: ['x', 7] }), 'missing_rooms'],
    ['unknown scope', () => sign({ ...valid, scope: 'admin' }), 'bad_scope'],
    ['wrong signature', () => createRoomToken(OTHER, { sub: 'a', rooms: ['x'], ttlSeconds: 60, now: NOW }), 'bad_signature'],
    ['alg none', () => new UnsecuredJWT(valid).encode(), 'bad_algorithm'],
    ['HS512 with the right secret', () => sign(valid, 'HS512'), 'bad_algorithm'],
    ['HS384 with the right secret', () => sign(valid, 'HS384'), 'bad_algorithm'],
    ['RS256', async () => new SignJWT(valid).setProtectedHeader({ alg: 'RS256' }).sign((await generateKeyPair('RS256')).privateKey), 'bad_algorithm'],
    ['alg none header on a valid HS256 signature', async () => swapHeader(await sign(valid), { alg: 'none' }), 'bad_algorithm'],
    ['garbage', () => 'not-a-token', 'malformed'],
    ['three empty parts', () => '..', 'malformed'],
    ['two parts', () => 'eyJhbGciOiJIUzI1NiJ9.e30', 'malformed'],
    ['payload edited after signing', async () => replacePayload(await sign(valid), JSON.stringify({ ...valid, rooms: ['*'] })), 'bad_signature'],
    ['signed payload that is not JSON', () => signRaw('not json'), 'malformed'],
    ['signed payload that is a JSON array', () => signRaw('[1,2]'), 'malformed'],
    ['over 8 KiB', () => `${'a'.repeat(9000)}.b.c`, 'malformed'],
  ];
  it.each(cases)('%s', async (_label, make, reason) => {
    expect(await verifyRoomToken(await make(), [SECRET], { now: NOW })).toEqual({ ok: false, reason });
  });

  it.each([undefined, null, ''])('missing token (%s)', async (token) => {
    expect(await verifyRoomToken(token, [SECRET])).toEqual({ ok: false, reason: 'missing' });
  });
});

describe('tokenCoversRoom', () => {
  const claims = { rooms: ['the-boss-conversation-*', 'the-boss-preference-alice'] };
  it.each([
    ['the-boss-conversation-1', true],
    ['the-boss-conversation-7f3c2a10-9d4e', true],
    ['the-boss-preference-alice', true],
    ['the-boss-preference-alice2', false],
    ['the-boss-preference-bob', false],
    ['the-boss-assistant-1', false],
    ['other-conversation-1', false],
  ])('%s -> %s', (room, expected) => {
    expect(tokenCoversRoom(claims, room)).toBe(expected);
  });

  it('`*` alone covers every room', () => {
    expect(tokenCoversRoom({ rooms: ['*'] }, 'any-conversation-1')).toBe(true);
  });

  it('`*` only acts at the end of a pattern', () => {
    expect(tokenCoversRoom({ rooms: ['the-*-conversation-1'] }, 'the-boss-conversation-1')).toBe(false);
    expect(tokenCoversRoom({ rooms: ['the-*-conversation-1'] }, 'the-*-conversation-1')).toBe(true);
  });
});

function signRaw(payload: string): Promise<string> {
  return new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: 'HS256' }).sign(key);
}

function swapHeader(token: string, header: Record<string, unknown>): string {
  const [, payload, signature] = token.split('.');
  return `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${payload}.${signature}`;
}

function replacePayload(token: string, payload: string): string {
  const [header, , signature] = token.split('.');
  return `${header}.${Buffer.from(payload).toString('base64url')}.${signature}`;
}

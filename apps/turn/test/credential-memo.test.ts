/**
 * The TURN server memoizes what a username derives to (its passwords and long-term keys) and
 * which nonces it has verified: neither memo may outlive what it stands for. A username or a
 * nonce accepted once is refused once its expiry has passed, on the same clock.
 */
import { describe, expect, it, vi } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createTurnCredentials } from '@sync-suite/shared/node';
import { RestCredentials } from '../src/credentials.js';
import { StatelessNonces } from '../src/nonces.js';
import { longTermKey } from '../src/stun/codec.js';
import { A, CLASS, METHOD, encode, transport } from './helpers/stun-client.js';

const SECRET = 'memo-test-secret-0123456789';
const REALM = 'memo';

/** An Allocate signed with `password`, as a client sends it. */
function signedAllocate(username: string, password: string): Buffer {
  const attrs: Array<[number, Buffer]> = [[A.REQUESTED_TRANSPORT, transport()], [A.USERNAME, Buffer.from(username)], [A.REALM, Buffer.from(REALM)], [A.NONCE, Buffer.from('n')]];
  return encode(METHOD.ALLOCATE, CLASS.REQUEST, randomBytes(12), attrs, longTermKey(username, REALM, password));
}

describe('memoized credentials and nonces', () => {
  it('a username accepted (and memoized) before its expiry is refused after it', () => {
    let now = 1_000_000;
    const creds = new RestCredentials([SECRET], REALM, () => now);
    const { username, credential } = createTurnCredentials(SECRET, 'alice', 60, now);
    expect(creds.inspect(signedAllocate(username, credential))).toMatchObject({ username, password: credential, failure: undefined });
    expect(creds.passwordFor(username)).toBe(credential);
    now += 61;
    expect(creds.inspect(signedAllocate(username, credential))).toMatchObject({ password: undefined, failure: 'expired' });
    expect(creds.passwordFor(username)).toBeUndefined();
  });

  it('a memoized username still needs the right signature, and the previous secret still works', () => {
    const now = 1_000_000;
    const creds = new RestCredentials([SECRET, 'the-previous-secret'], REALM, () => now);
    const current = createTurnCredentials(SECRET, 'bob', 600, now);
    expect(creds.inspect(signedAllocate(current.username, current.credential))?.failure).toBeUndefined();
    expect(creds.inspect(signedAllocate(current.username, 'not-the-password'))?.failure).toBe('bad_password');
    const previous = createTurnCredentials('the-previous-secret', 'bob', 600, now);
    expect(creds.inspect(signedAllocate(previous.username, previous.credential))).toMatchObject({ password: previous.credential, failure: undefined });
    expect(creds.inspect(signedAllocate(previous.username, previous.credential))).toMatchObject({ password: previous.credential, failure: undefined });
  });

  it('a nonce verified (and memoized) before its expiry is refused after it; a forged one never passes', () => {
    let now = 5_000_000;
    const nonces = new StatelessNonces(10_000, () => now);
    const nonce = nonces.issue();
    expect(nonces.valid(nonce)).toBe(true);
    expect(nonces.valid(nonce)).toBe(true);
    now += 10_001;
    expect(nonces.valid(nonce)).toBe(false);
    const forged = nonce.slice(0, 12) + 'A'.repeat(24);
    expect(nonces.valid(forged)).toBe(false);
    expect(nonces.valid(forged)).toBe(false);
  });
  // node-turn decodes NONCE as UTF-8: 36 characters can be more than 36 bytes, and
  // timingSafeEqual throws on buffers of different lengths (the request got no 438).
  it('a nonce of 36 characters that are not all ASCII is refused, not thrown on', () => {
    const nonces = new StatelessNonces(10_000, () => 5_000_000);
    const nonce = nonces.issue();
    expect(nonces.valid(nonce.slice(0, 12) + '\u00e9'.repeat(24))).toBe(false);
    expect(nonces.valid(nonce.slice(0, 35) + '\u{10348}'.slice(0, 1))).toBe(false);
  });
  // The memo is bounded by count (4096 usernames); a USERNAME can be most of a 64 KB datagram:
  // 4000 of 60 KB held about 300 MB. RFC 8489 section 14.3 allows fewer than 509 bytes: longer
  // ones are refused, even with the right password, before any HMAC or memo.
  it('a username of 509 bytes or more is refused without an HMAC and not memoized; 508 bytes is checked', () => {
    const now = 1_000_000;
    const creds = new RestCredentials([SECRET], REALM, () => now);
    const internals = creds as unknown as { derived: Map<string, unknown>; password: (...a: unknown[]) => string; key: (...a: unknown[]) => Buffer };
    const password = vi.spyOn(internals, 'password');
    const key = vi.spyOn(internals, 'key');
    const prefix = `${now + 600}:`;
    const atMost = createTurnCredentials(SECRET, 'x'.repeat(508 - prefix.length), 600, now);
    // 2-byte characters: fewer than 509 UTF-16 units, more than 508 bytes
    const wide = createTurnCredentials(SECRET, '\u00e9'.repeat(Math.ceil((509 - prefix.length) / 2)), 600, now);
    for (const sub of ['x'.repeat(509 - prefix.length), 'x'.repeat(60_000)]) {
      const long = createTurnCredentials(SECRET, sub, 600, now);
      expect(creds.inspect(signedAllocate(long.username, long.credential))).toMatchObject({ password: undefined, failure: 'username_too_long' });
      expect(creds.passwordFor(long.username)).toBeUndefined();
    }
    expect(Buffer.byteLength(wide.username)).toBeGreaterThan(508);
    expect(wide.username.length).toBeLessThan(509);
    expect(creds.inspect(signedAllocate(wide.username, wide.credential))?.failure).toBe('username_too_long');
    expect(creds.passwordFor(wide.username)).toBeUndefined();
    expect(password).not.toHaveBeenCalled();
    expect(key).not.toHaveBeenCalled();
    expect(internals.derived.size).toBe(0);
    expect(Buffer.byteLength(atMost.username)).toBe(508);
    expect(creds.inspect(signedAllocate(atMost.username, atMost.credential))).toMatchObject({ password: atMost.credential, failure: undefined });
    expect(creds.passwordFor(atMost.username)).toBe(atMost.credential);
    expect(internals.derived.size).toBe(1);
  });
});

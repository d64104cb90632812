import { describe, expect, it } from 'vitest';
import {
  createTurnCredentials,
  turnPassword,
  turnUsernameExpiry,
  verifyTurnCredentials,
} from '../../src/turn/rest-credentials.js';

const SECRET = 'turn-secret-for-tests';
const NEXT = 'turn-secret-after-rotation';
const NOW = 1_700_000_000;

describe('TURN REST credentials', () => {
  it('matches the coturn formula (fixture from `openssl dgst -sha1 -hmac ... | base64`)', () => {
    expect(turnPassword(SECRET, '1700003600:alice')).toBe('apBo6t41Jez2Q4jIKn8/22msMCo=');
  });

  it('creates username <expiry>:<sub> and its password', () => {
    const creds = createTurnCredentials(SECRET, 'alice', 3600, NOW);
    expect(creds).toEqual({ username: '1700003600:alice', credential: 'apBo6t41Jez2Q4jIKn8/22msMCo=', expiresAt: NOW + 3600 });
  });

  it('keeps `:` out of the id so the expiry parses unambiguously', () => {
    const creds = createTurnCredentials(SECRET, 'a:b', 60, NOW);
    expect(creds.username).toBe(`${NOW + 60}:a_b`);
    expect(turnUsernameExpiry(creds.username)).toBe(NOW + 60);
  });

  it('verifies until the expiry second and refuses after it', () => {
    const { username, credential } = createTurnCredentials(SECRET, 'alice', 60, NOW);
    expect(verifyTurnCredentials(username, credential, [SECRET], NOW)).toEqual({ ok: true });
    expect(verifyTurnCredentials(username, credential, [SECRET], NOW + 60)).toEqual({ ok: true });
    expect(verifyTurnCredentials(username, credential, [SECRET], NOW + 61)).toEqual({ ok: false, reason: 'expired' });
  });

  it('accepts two secrets at once during rotation', () => {
    const old = createTurnCredentials(SECRET, 'alice', 60, NOW);
    const fresh = createTurnCredentials(NEXT, 'alice', 60, NOW);
    expect(verifyTurnCredentials(old.username, old.credential, [NEXT, SECRET], NOW)).toEqual({ ok: true });
    expect(verifyTurnCredentials(fresh.username, fresh.credential, [NEXT, SECRET], NOW)).toEqual({ ok: true });
    expect(verifyTurnCredentials(old.username, old.credential, [NEXT], NOW)).toEqual({ ok: false, reason: 'bad_password' });
  });

  it.each([
    ['no expiry', 'alice', 'x'],
    ['empty', '', 'x'],
    ['expiry not numeric', 'soon:alice', 'x'],
  ])('refuses a malformed username (%s)', (_label, username, password) => {
    expect(verifyTurnCredentials(username, password, [SECRET], NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses a wrong or truncated password, and a username edited after signing', () => {
    const { username, credential } = createTurnCredentials(SECRET, 'alice', 60, NOW);
    expect(verifyTurnCredentials(username, 'wrong', [SECRET], NOW)).toEqual({ ok: false, reason: 'bad_password' });
    expect(verifyTurnCredentials(username, credential.slice(0, -1), [SECRET], NOW)).toEqual({ ok: false, reason: 'bad_password' });
    const extended = username.replace(String(NOW + 60), String(NOW + 99999));
    expect(verifyTurnCredentials(extended, credential, [SECRET], NOW)).toEqual({ ok: false, reason: 'bad_password' });
  });
});

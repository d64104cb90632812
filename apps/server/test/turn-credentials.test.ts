import { afterEach, describe, expect, it } from 'vitest';
import { Errors, createRoomToken, verifyTurnCredentials } from '@sync-suite/shared/node';
import { scrapeMetric } from '../../../test/helpers/prometheus.js';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';

const TURN_SECRET = 'turn-secret-for-tests-0123456789ab';
const scope = serverPerTest();
afterEach(() => scope.close());

const token = (sub = 'alice') => testToken(sub, ['acme-conversation-*']);

describe('GET /turn-credentials', () => {
  it('hands REST credentials to a valid token, in RTCIceServer form, not cacheable', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, TURN_SECRET, TURN_TTL_SECONDS: '120' });
    const res = await fetch(`${server.url}/turn-credentials`, { headers: { authorization: `Bearer ${await token()}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { ttl: number; iceServers: Array<{ urls: string[]; username?: string; credential?: string }> };
    expect(body.ttl).toBe(120);
    expect(body.iceServers[0]).toEqual({ urls: ['stun:127.0.0.1:3478'] });
    const turn = body.iceServers[1]!;
    expect(turn.urls).toEqual(['turn:127.0.0.1:3478']);
    const [expiry, sub] = turn.username!.split(':');
    expect(sub).toBe('alice');
    const now = Math.floor(Date.now() / 1000);
    expect(Number(expiry)).toBeGreaterThanOrEqual(now + 119);
    expect(Number(expiry)).toBeLessThanOrEqual(now + 121);
    expect(verifyTurnCredentials(turn.username!, turn.credential!, [TURN_SECRET])).toEqual({ ok: true });
    // the secret itself never leaves the server
    expect(JSON.stringify(body)).not.toContain(TURN_SECRET);
  });

  it('keeps the username under the TURN USERNAME limit for a long sub: a stable sha256_ id past 256 bytes', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, TURN_SECRET });
    const usernameFor = async (sub: string): Promise<{ username: string; credential: string }> => {
      const res = await fetch(`${server.url}/turn-credentials`, { headers: { authorization: `Bearer ${await token(sub)}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { iceServers: Array<{ username?: string; credential?: string }> };
      return body.iceServers[1] as { username: string; credential: string };
    };
    const atLimit = 'a'.repeat(256);
    expect((await usernameFor(atLimit)).username).toMatch(new RegExp(`^\\d+:${atLimit}$`));
    const long = 'b'.repeat(500); // over 256 bytes, within the 512 characters a token's sub may have
    const first = await usernameFor(long);
    // apps/turn refuses a USERNAME of 509 bytes or more (RFC 8489 section 14.3)
    expect(Buffer.byteLength(first.username)).toBeLessThan(509);
    expect(first.username).toMatch(/^\d+:sha256_[A-Za-z0-9_-]{43}$/);
    expect(verifyTurnCredentials(first.username, first.credential, [TURN_SECRET])).toEqual({ ok: true });
    // the same sub gets the same id (per-user quotas count it once); another sub another id
    expect((await usernameFor(long)).username.split(':')[1]).toBe(first.username.split(':')[1]);
    expect((await usernameFor(`${long}c`)).username.split(':')[1]).not.toBe(first.username.split(':')[1]);
  });

  it('accepts ?token= and uses TURN_URLS as given', async () => {
    const server = await scope.start({
      AUTH_SECRET: TEST_SECRET,
      TURN_SECRET,
      TURN_URLS: 'turn:turn.example.com:3478?transport=udp,turns:turn.example.com:5349?transport=tcp,stun:stun.example.com:3478',
    });
    const res = await fetch(`${server.url}/turn-credentials?token=${await token()}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { iceServers: Array<{ urls: string[]; username?: string }> };
    expect(body.iceServers[0]!.urls).toEqual(['stun:stun.example.com:3478', 'stun:turn.example.com:3478']);
    expect(body.iceServers[1]!.urls).toEqual(['turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com:5349?transport=tcp']);
    expect(body.iceServers[1]!.username).toMatch(/^\d+:alice$/);
  });

  it('refuses a missing, bad or expired token with 401 and counts it', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, TURN_SECRET });
    const missing = await fetch(`${server.url}/turn-credentials`);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ error: 'ERR_TOKEN_MISSING', message: Errors.ERR_TOKEN_MISSING.message });
    const forged = await createRoomToken('another-secret-that-is-32-bytes-long!!', { sub: 'eve', rooms: ['*'], ttlSeconds: 600 });
    const res = await fetch(`${server.url}/turn-credentials`, { headers: { authorization: `Bearer ${forged}` } });
    expect(res.status).toBe(401);
    const body: unknown = await res.json();
    expect(body).toEqual({ error: 'ERR_TOKEN_INVALID', message: Errors.ERR_TOKEN_INVALID.message });
    expect(JSON.stringify(body)).not.toContain('username');
    const expired = await testToken('bob', ['*'], { ttlSeconds: 60, now: Math.floor(Date.now() / 1000) - 600 });
    expect((await fetch(`${server.url}/turn-credentials?token=${expired}`)).status).toBe(401);
    expect(await scrapeMetric(`${server.url}/metrics`, 'sync_auth_failures_total{endpoint="turn"}')).toBeGreaterThanOrEqual(1);
  });

  it('offers STUN only when TURN_SECRET is unset', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const res = await fetch(`${server.url}/turn-credentials`, { headers: { authorization: `Bearer ${await token()}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { iceServers: unknown[] };
    expect(body.iceServers).toEqual([{ urls: ['stun:127.0.0.1:3478'] }]);
  });

  it('needs no token when auth is off', async () => {
    const server = await scope.start({ TURN_SECRET });
    const res = await fetch(`${server.url}/turn-credentials`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { iceServers: Array<{ username?: string }> };
    expect(body.iceServers[1]!.username).toMatch(/^\d+:anonymous$/);
  });

  it('rate limits per token subject: 429 with the JSON error shape and retry-after, other users unaffected', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, TURN_SECRET, TURN_CREDENTIALS_PER_MINUTE: '2' });
    const get = async (sub: string) => fetch(`${server.url}/turn-credentials`, { headers: { authorization: `Bearer ${await token(sub)}` } });
    // a fresh token each time: the limit follows the user, not the token string
    expect((await get('alice')).status).toBe(200);
    expect((await get('alice')).status).toBe(200);
    const refused = await get('alice');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toEqual({ error: 'ERR_RATE_LIMITED', message: 'message rate limit' });
    expect((await get('bob')).status).toBe(200);
  });
});


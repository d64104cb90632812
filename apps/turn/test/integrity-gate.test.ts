/**
 * A request our own check found signed with a wrong password (bad_password, decided with a
 * constant-time compare in stun/codec.ts) never reaches node-turn's MESSAGE-INTEGRITY compare,
 * which uses `!==` (node_modules/node-turn/lib/message.js): node-turn is told the username has
 * no password, and the client sees the same 401 (REALM and NONCE, no MESSAGE-INTEGRITY) as before.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RestCredentials } from '../src/credentials.js';
import { A } from './helpers/stun-client.js';
import { openStunClient, turnPerTest } from './helpers/turn.js';

const scope = turnPerTest();
afterEach(() => {
  vi.restoreAllMocks();
  return scope.close();
});

describe('a wrong password', () => {
  it('gets the same 401 and node-turn is never handed the password to compare', async () => {
    const t = await scope.start();
    const lookups = vi.spyOn(RestCredentials.prototype, 'passwordFor');
    const { username } = t.creds('mallory');
    const wrong = await (await openStunClient(scope, { username, credential: 'not-the-password' })).allocate();
    expect(wrong.code).toBe(401);
    expect(wrong.get(A.REALM)?.toString()).toBe('sync-suite');
    expect(wrong.get(A.NONCE)?.length).toBeGreaterThan(0);
    expect(wrong.get(A.MESSAGE_INTEGRITY)).toBeUndefined();
    expect(wrong.get(A.USERNAME)).toBeUndefined();
    expect(await t.metric('turn_auth_failures_total{reason="bad_password"}')).toBe(1);
    // every lookup node-turn made for this username answered "no such user"
    const answers = lookups.mock.calls.map((call, i) => ({ name: call[0], password: lookups.mock.results[i]?.value as unknown })).filter((c) => c.name === username);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.every((a) => a.password === undefined)).toBe(true);

    // the right password still allocates
    const ok = await (await openStunClient(scope, t.creds('alice'))).allocate();
    expect(ok.cls).toBe(2);
  });
});

/**
 * Token lifetime on open sockets: a relay socket and a signaling socket are closed 4401 once the
 * token's exp + TOKEN_EXPIRY_GRACE_SECONDS has passed (grace lowered here to keep the test short),
 * while a socket with a longer token stays; tokens living longer than TOKEN_MAX_TTL_SECONDS are
 * refused with a reason that says so.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { RawClient as RelayClient, metric } from '../../../test/fixtures/relay-clients.js';
import { RawClient as SignalClient } from './signaling-client.js';

const scope = serverPerTest();
afterEach(() => scope.close());

const ROOM = 'acme-conversation-expiry';

function update(text: string): Uint8Array {
  const d = new Y.Doc();
  d.getText('t').insert(0, text);
  return encodeRelayMessage((e) => writeRelayUpdate(e, Y.encodeStateAsUpdate(d)));
}

async function relay(wsUrl: string, token: string): Promise<RelayClient> {
  const c = await RelayClient.connect(`${wsUrl}/relay/${ROOM}?token=${token}`);
  scope.track(c);
  await c.next((m) => m.type === 'sync-step1', 5000, 'sync step 1');
  return c;
}

async function signal(wsUrl: string, token: string): Promise<SignalClient> {
  const c = await SignalClient.open(`${wsUrl}/signal?token=${token}`);
  scope.track(c);
  return c;
}

describe('token expiry on open sockets', () => {
  it('closes relay and signaling sockets 4401 once exp + grace has passed; a longer token stays open', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, TOKEN_EXPIRY_GRACE_SECONDS: '1' });
    const short = await testToken('alice', ['acme-*'], { ttlSeconds: 2 });
    const long = await testToken('bob', ['acme-*'], { ttlSeconds: 600 });
    const opened = Date.now();
    const [r, s] = [await relay(server.wsUrl, short), await signal(server.wsUrl, short)];
    const [keepR, keepS] = [await relay(server.wsUrl, long), await signal(server.wsUrl, long)];

    // Before expiry the short token's socket still publishes.
    r.send(update('before expiry'));
    await keepR.next((m) => m.type === 'update', 5000, 'update relayed before expiry');

    const [rc, sc] = await Promise.all([r.closed(10_000), s.closedWithin(10_000)]);
    const elapsed = Date.now() - opened;
    expect(rc).toBe(4401);
    expect(sc).toEqual({ code: 4401, reason: 'token expired' });
    expect(r.messages.some((m) => m.type === 'auth')).toBe(true); // "permission denied" before the close
    // exp (2 s, whole seconds) + grace (1 s): never before exp + grace - 1 s of rounding.
    expect(elapsed).toBeGreaterThanOrEqual(2000);
    expect(await metric(server.url, 'sync_token_closures_total', { reason: 'expired' })).toBe(2);

    // The other user is unaffected.
    expect(keepR.closeCode).toBeNull();
    await keepS.roundTrip();
  }, 20_000);

  it('refuses tokens living longer than TOKEN_MAX_TTL_SECONDS, and exp: 1e300, with 4401 saying why', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, TOKEN_MAX_TTL_SECONDS: '3600' });
    const tooLong = await testToken('alice', ['acme-*'], { ttlSeconds: 3601 });
    const r = await RelayClient.connect(`${server.wsUrl}/relay/${ROOM}?token=${tooLong}`);
    scope.track(r);
    expect(await r.closed()).toBe(4401);
    const s = await SignalClient.open(`${server.wsUrl}/signal?token=${tooLong}`);
    expect(await s.closedWithin()).toEqual({ code: 4401, reason: 'token lives longer than TOKEN_MAX_TTL_SECONDS' });
    expect(await metric(server.url, 'sync_auth_failures_total', { reason: 'ttl_too_long' })).toBe(2);

    const { SignJWT } = await import('jose');
    const forever = await new SignJWT({ sub: 'mallory', exp: 1e300, rooms: ['acme-*'] })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(TEST_SECRET));
    const f = await SignalClient.open(`${server.wsUrl}/signal?token=${forever}`);
    expect((await f.closedWithin()).code).toBe(4401);
    expect(await metric(server.url, 'sync_auth_failures_total', { reason: 'ttl_too_long' })).toBe(3);
  });
});

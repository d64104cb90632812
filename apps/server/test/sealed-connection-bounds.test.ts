/**
 * What a hostile /sealed socket can make the server hold or do, on a real server with raw clients:
 * a token revoked while it is being verified serves nothing it sent meanwhile.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { untilCount, withTimeout } from '../../../test/helpers/timeout.js';
import { RawSealed } from '../../../test/fixtures/sealed-raw.js';

const scope = serverPerTest();
afterEach(() => scope.close());

async function client(path: string): Promise<RawSealed> {
  const c = await RawSealed.connect(scope.current.wsUrl, path);
  scope.track(c);
  return c;
}

/** The server's side of the only WebSocket open on it. */
function onlyServerSocket(): WebSocket {
  const sockets = [...scope.current.app.sync.admission.sockets];
  expect(sockets).toHaveLength(1);
  return sockets[0] as WebSocket;
}

describe('sealed admission races', () => {
  it('a token revoked while it is being verified closes 4401 and nothing it sent meanwhile is served', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, PERSIST_FLUSH_MS: '5' });
    const ctx = server.app.sync;
    const registry = server.app.sealedRooms;
    const room = 'acme-conversation-revoke-race';
    // The token verifies; the admin revokes its sub before the verification returns.
    let releaseVerify!: () => void;
    const verifyHeld = new Promise<void>((r) => (releaseVerify = r));
    scope.track({ close: () => releaseVerify() });
    const verify = ctx.auth.verify.bind(ctx.auth);
    ctx.auth.verify = async (...args) => {
      const result = await verify(...args);
      await verifyHeld;
      if (result.ok) ctx.revocations.apply({ sub: result.claims.sub, until: Math.floor(Date.now() / 1000) + 3600 });
      return result;
    };
    let joins = 0;
    const join = registry.join.bind(registry);
    registry.join = (...args) => {
      joins++;
      return join(...args);
    };

    const c = await client(`/sealed/${room}?token=${await testToken('mallory', [room])}`);
    const serverSide = onlyServerSocket();
    let received = 0;
    serverSide.on('message', () => received++);
    c.hello(0);
    for (let i = 1; i <= 5; i++) c.update(i, Uint8Array.from([9, 9, i]));
    await untilCount(serverSide, 'message', () => received, 6, 5000, 'the server reading hello and 5 updates');
    releaseVerify();

    expect(await c.closed()).toBe(4401);
    // Whatever was queued during the verification went nowhere: no join (which would serve it), no entry.
    expect(joins).toBe(0);
    expect(registry.rooms.get(room)).toBeUndefined();
    expect((await registry.store.stats(room)).head).toBe(0);
    expect(c.messages).toEqual([]);
  });
});

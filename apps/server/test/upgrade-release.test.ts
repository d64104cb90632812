/**
 * An open WebSocket does not keep its HTTP upgrade request (headers, URL with the token) alive
 * for its whole life: ws/upgrade-hooks.ts releaseUpgrade, bench/memory.ts.
 */
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { connectRawClient } from '../../../test/fixtures/relay-clients.js';
import { RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { SEALED_ENVELOPE_MIN_BYTES } from '@sync-suite/shared';
import { metricValue } from './signaling-client.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { cachedPeerAddress, tcpSocket } from '../src/ws/ws-internals.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const scope = serverPerTest();
afterEach(() => scope.close());

/**
 * Two idle sockets of one endpoint listen to three events, share every listener, and have a
 * single listener for each (ws/upgrade-hooks.ts's 'error', the endpoint's 'message' and 'close'),
 * kept as a bare function rather than an array.
 */
function expectSharedListeners(a: WebSocket | undefined, b: WebSocket | undefined): void {
  const perSocket: Record<string, number> = { message: 0, close: 0, error: 0 };
  // Three event names: a fourth (keepalive listened to 'pong') grows ws's listener table from 4
  // to 8 slots (ws/keepalive.ts).
  expect(a?.eventNames().map(String).sort(), 'events listened to').toEqual(['close', 'error', 'message']);
  for (const [event, allowed] of Object.entries(perSocket)) {
    const mine = a?.listeners(event) ?? [];
    const theirs = b?.listeners(event) ?? [];
    expect(mine.length, event).toBeGreaterThan(0);
    expect(mine.filter((listener) => !theirs.includes(listener)), event).toHaveLength(allowed);
  }
  expect(a?.listenerCount('error'), 'error listeners').toBe(1);
  // The endpoint's one shared listener, which releases the socket from keepalive and admission
  // (ws/shared-listeners.ts); ws's client tracking, which added a closure, is off (app.ts).
  expect(a?.listenerCount('close'), 'close listeners').toBe(1);
  expect(b?.listenerCount('close'), 'close listeners').toBe(1);
  // The peer address node cached when admission read it is not kept (ws/upgrade-hooks.ts
  // releaseUpgrade); asked again, node reads it again.
  const raw = a && tcpSocket(a);
  expect(raw && cachedPeerAddress(raw), 'cached peer address').toBeUndefined();
  expect(raw?.remoteAddress).toBe('127.0.0.1');
}

/** Closes the server side of every socket and waits for it: admission released each one. */
async function expectReleasedOnClose(app: { sync: { admission: { count: number; sockets: ReadonlySet<WebSocket> } } }): Promise<void> {
  const sockets = [...app.sync.admission.sockets];
  expect(app.sync.admission.count).toBe(sockets.length);
  const closed = Promise.all(sockets.map((ws) => once(ws, 'close')));
  for (const ws of sockets) ws.terminate();
  await withTimeout(closed, 5000, 'server-side closes');
  expect(app.sync.admission.count, 'admitted sockets after close').toBe(0);
  expect(app.sync.admission.sockets.size, 'open sockets after close').toBe(0);
}

/** True once every request is collected; polls with a full GC, bounded (admission holds one 3 s). */
async function collected(refs: Array<WeakRef<IncomingMessage>>, ms = 15_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    gc();
    if (refs.every((r) => r.deref() === undefined)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 250)); // GC has no event to wait on
  }
}

describe('upgrade request release', () => {
  it('open /relay and /signal sockets let their upgrade requests be collected', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const refs: Array<WeakRef<IncomingMessage>> = [];
    server.app.websocketServer.on('connection', (_ws: WebSocket, req: IncomingMessage) => refs.push(new WeakRef(req)));
    const token = await testToken('u1', ['acme-conversation-*'], { ttlSeconds: 60 });
    const relay = await connectRawClient(scope, `/relay/acme-conversation-release?token=${token}`);
    const signal = new WebSocket(`${server.wsUrl}/signal?token=${token}`);
    scope.track({ close: () => signal.terminate() });
    await once(signal, 'open');
    signal.send(JSON.stringify({ type: 'ping' }));
    await once(signal, 'message'); // authenticated: the pong comes after the token check
    expect(refs).toHaveLength(2);
    expect(await collected(refs)).toBe(true);
    expect(relay.ws.readyState).toBe(WebSocket.OPEN);
    expect(signal.readyState).toBe(WebSocket.OPEN);
  });

  // An idle connection's cost is what it holds (docs/benchmarks.md, memory): the listeners on a
  // /signal socket are shared functions (signaling/connection.ts, ws/upgrade-hooks.ts), not
  // closures made per socket.
  it('idle /signal sockets share every listener', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const token = await testToken('u1', ['acme-conversation-*'], { ttlSeconds: 60 });
    for (let i = 0; i < 2; i++) {
      const signal = new WebSocket(`${server.wsUrl}/signal?token=${token}`);
      scope.track({ close: () => signal.terminate() });
      await once(signal, 'open');
      signal.send(JSON.stringify({ type: 'subscribe', topics: ['acme-conversation-shared'] }));
      signal.send(JSON.stringify({ type: 'ping' }));
      await once(signal, 'message'); // authenticated and subscribed: the pong comes after both
    }
    const [a, b] = [...server.app.sync.admission.sockets];
    expectSharedListeners(a, b);
    await expectReleasedOnClose(server.app);
  });

  // The same on /relay and /sealed (relay/connection.ts, sealed/connection.ts).
  it('idle /relay and /sealed sockets share every listener', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, SEALED_ROOM_TYPES: 'assistant' });
    const token = await testToken('u1', ['acme-conversation-*', 'acme-assistant-*'], { ttlSeconds: 60 });
    for (let i = 0; i < 2; i++) {
      const relay = await connectRawClient(scope, `/relay/acme-conversation-shared?token=${token}`);
      await relay.handled(); // joined: the sync step 1 is answered
    }
    const relaySockets = [...server.app.sync.admission.sockets];
    expectSharedListeners(relaySockets[0], relaySockets[1]);
    for (let i = 0; i < 2; i++) {
      const sealed = await RawSealed.connect(server.wsUrl, `/sealed/acme-assistant-shared?token=${token}`);
      scope.track(sealed);
      sealed.hello(0);
      await sealed.next('caught-up');
    }
    const sealedSockets = [...server.app.sync.admission.sockets].filter((ws) => !relaySockets.includes(ws));
    expectSharedListeners(sealedSockets[0], sealedSockets[1]);
    await expectReleasedOnClose(server.app);
  });

  // Reading paused (the rate, or a sealed frame that came before the token was checked) makes the
  // connection's ReadThrottle on first use (ws/read-throttle.ts): it adds no 'close' listener of
  // its own; the endpoint's shared one stops it. A full-suite run once caught the sealed socket
  // above with two, when its hello came before admission.
  it('a socket whose reading was paused still has one close listener, on every endpoint', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, SEALED_ROOM_TYPES: 'assistant', MAX_MESSAGES_PER_SECOND: '2' });
    const token = await testToken('u1', ['acme-conversation-*', 'acme-assistant-*'], { ttlSeconds: 60 });
    const newest = (): WebSocket | undefined => [...server.app.sync.admission.sockets].at(-1);

    const signal = new WebSocket(`${server.wsUrl}/signal?token=${token}`);
    scope.track({ close: () => signal.terminate() });
    await once(signal, 'open');
    let pongs = 0;
    const fivePongs = new Promise<void>((done) => signal.on('message', () => ++pongs === 5 && done()));
    for (let i = 0; i < 5; i++) signal.send(JSON.stringify({ type: 'ping' }));
    await withTimeout(fivePongs, 10_000, 'five pongs');
    expect(newest()?.listenerCount('close'), '/signal close listeners').toBe(1);

    const relay = await connectRawClient(scope, `/relay/acme-conversation-paused?token=${token}`);
    for (let i = 0; i < 5; i++) await relay.handled(10_000);
    expect(newest()?.listenerCount('close'), '/relay close listeners').toBe(1);

    const sealed = await RawSealed.connect(server.wsUrl, `/sealed/acme-assistant-paused?token=${token}`);
    scope.track(sealed);
    sealed.hello(0);
    for (let id = 1; id <= 5; id++) sealed.update(id, new Uint8Array(SEALED_ENVELOPE_MIN_BYTES).fill(id));
    await sealed.wait(() => sealed.messages.filter((m) => m.type === 'ack').length === 5, 'five acks', 10_000);
    expect(newest()?.listenerCount('close'), '/sealed close listeners').toBe(1);

    // Each endpoint's reading was paused: the throttle was made on all three.
    for (const endpoint of ['signal', 'relay', 'sealed']) expect(await metricValue(server, 'rateLimitPauses', { endpoint }), endpoint).toBeGreaterThanOrEqual(1);
    await expectReleasedOnClose(server.app);
  });

  // Admission tracks the open sockets (ws's client tracking is off, app.ts): a socket no endpoint
  // takes is closed by the server and leaves them through admission's safety-net listener.
  it('a socket no endpoint takes leaves the open sockets when it closes', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const serverSide = once(server.app.websocketServer, 'connection') as Promise<[WebSocket]>;
    const client = new WebSocket(`${server.wsUrl}/healthz`);
    scope.track({ close: () => client.terminate() });
    client.on('error', () => undefined);
    const [ws] = await withTimeout(serverSide, 5000, 'upgrade');
    expect(server.app.sync.admission.sockets.has(ws)).toBe(true);
    await withTimeout(once(ws, 'close'), 5000, 'server-side close');
    expect(server.app.sync.admission.sockets.size).toBe(0);
  });
});

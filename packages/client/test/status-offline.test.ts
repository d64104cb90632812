/**
 * `offline` when every attempt failed (README "Status"), also where no socket was tried yet or
 * only one path exists: getToken() failing at start (an app offline whose backend issues the
 * tokens; credentials.ts retries it) and the relay alone (no crypto.subtle, as on Hermes without a
 * polyfill: WebRTC is off). Both used to stay `connecting` for as long as it lasted.
 */
import { afterEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import WebSocket from 'ws';
import { SyncProvider } from '../src/index.js';
import type { SyncStatus } from '../src/status.js';

/** nothing listens there */
const UNREACHABLE = 'http://127.0.0.1:9';

let provider: SyncProvider | undefined;
let doc: Y.Doc | undefined;
afterEach(() => {
  provider?.destroy();
  doc?.destroy();
  provider = undefined;
});

function statusBecomes(p: SyncProvider, want: SyncStatus, timeoutMs: number): Promise<void> {
  return new Promise((done, fail) => {
    if (p.status === want) return done();
    const timer = setTimeout(() => {
      p.off('status', on);
      fail(new Error(`status stayed ${p.status}, expected ${want}`));
    }, timeoutMs);
    const on = ({ status }: { status: SyncStatus }): void => {
      if (status !== want) return;
      clearTimeout(timer);
      p.off('status', on);
      done();
    };
    p.on('status', on);
  });
}

it('getToken() failing before any socket: offline after the first failure, connecting once a token comes', async () => {
  doc = new Y.Doc();
  let failing = true;
  const tokenErrors: string[] = [];
  provider = new SyncProvider(doc, {
    serverUrl: UNREACHABLE,
    room: 'test-conversation-token-offline',
    WebSocket,
    fetch: () => Promise.reject(new Error('unreachable')),
    getToken: () => (failing ? Promise.reject(new Error('network down')) : Promise.resolve('a.b.c')),
  });
  provider.on('error', (e) => tokenErrors.push(e.source));
  await statusBecomes(provider, 'offline', 5_000);
  expect(tokenErrors).toContain('token');
  expect(provider.webrtc).toBeUndefined();
  failing = false;
  // the next retry of credentials.first() gets a token: the transports start and try again
  await statusBecomes(provider, 'connecting', 5_000);
  expect(provider.webrtc).toBeDefined();
}, 15_000);

it('relay only (sealed room without crypto.subtle), server unreachable: offline', async () => {
  const real = globalThis.crypto;
  Object.defineProperty(globalThis, 'crypto', { configurable: true, value: { getRandomValues: real.getRandomValues.bind(real) } });
  try {
    doc = new Y.Doc();
    provider = new SyncProvider(doc, {
      serverUrl: UNREACHABLE,
      room: 'test-conversation-relay-only-offline',
      WebSocket,
      fetch: () => Promise.reject(new Error('unreachable')),
      sealed: { key: new Uint8Array(32).fill(7) },
    });
    await statusBecomes(provider, 'offline', 5_000);
    expect(provider.webrtc).toBeUndefined();
    expect(provider.sealedRelay?.failed).toBe(true);
  } finally {
    Object.defineProperty(globalThis, 'crypto', { configurable: true, value: real });
  }
}, 15_000);

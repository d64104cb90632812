/**
 * MAX_CONNECTIONS_PER_SUB (ws/admission.ts): one token `sub` holds at most that many admitted
 * sockets on the instance, /signal, /relay and /sealed together; the next closes 4429 "too many
 * connections for this sub" once its token verifies, while other subs still get in, and a closed
 * socket gives its place back. With auth off nothing is counted per sub. A socket the safety net
 * admitted before its token check ended is still counted against its sub.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Errors } from '@sync-suite/shared';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { eventually } from '../../../test/helpers/timeout.js';
import { connectRawClient, metric } from '../../../test/fixtures/relay-clients.js';
import { RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { openRawClient } from './signaling-client.js';
import { Admission } from '../src/ws/admission.js';

const scope = serverPerTest();
afterEach(() => scope.close());

const REFUSED = Errors.ERR_TOO_MANY_CONNECTIONS_PER_SUB;

async function sealed(path: string): Promise<RawSealed> {
  const c = await RawSealed.connect(scope.current.wsUrl, path);
  scope.track(c);
  c.hello(0);
  return c;
}

describe('MAX_CONNECTIONS_PER_SUB', () => {
  it('refuses the sub\'s next socket on every endpoint with 4429 while another sub gets in; a closed one gives its place back', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_CONNECTIONS_PER_SUB: '3' });
    const [alice, bob] = [await testToken('alice', ['acme-*']), await testToken('bob', ['acme-*'])];

    // alice's three: one of each endpoint, each seen admitted (it answers)
    const signal = await openRawClient(scope, `/signal?token=${alice}`);
    await signal.roundTrip();
    const relay = await connectRawClient(scope, `/relay/acme-conversation-a?token=${alice}`);
    await relay.next((m) => m.type === 'sync-step1');
    const device = await sealed(`/sealed/acme-conversation-s?token=${alice}`);
    await device.next('caught-up');
    expect(server.app.sync.admission.countOf('alice')).toBe(3);

    // her fourth, on each endpoint: closed with the documented code and reason
    const signal4 = await openRawClient(scope, `/signal?token=${alice}`);
    const closed = await signal4.closedWithin();
    expect(closed).toEqual({ code: REFUSED.closeCode, reason: REFUSED.message });
    const relay4 = await connectRawClient(scope, `/relay/acme-conversation-b?token=${alice}`);
    expect(await relay4.closed()).toBe(REFUSED.closeCode);
    expect(relay4.messages.some((m) => m.type === 'sync-step1')).toBe(false);
    const device4 = await sealed(`/sealed/acme-conversation-s?token=${alice}`);
    expect(await device4.closed()).toBe(REFUSED.closeCode);
    expect(device4.messages.some((m) => m.type === 'welcome')).toBe(false);
    for (const endpoint of ['signal', 'relay', 'sealed']) {
      expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint, reason: 'too_many_connections_per_sub' }), endpoint).toBe(1);
    }
    expect(server.app.sync.admission.countOf('alice')).toBe(3);

    // bob is not alice
    const bobs = await openRawClient(scope, `/signal?token=${bob}`);
    await bobs.roundTrip();
    const bobsRelay = await connectRawClient(scope, `/relay/acme-conversation-a?token=${bob}`);
    await bobsRelay.next((m) => m.type === 'sync-step1');

    // alice's admitted sockets were not touched; one closing makes room for another
    expect(relay.closeCode).toBeNull();
    await signal.roundTrip();
    await signal.close();
    await eventually(async () => server.app.sync.admission.countOf('alice') === 2, 5000, 'alice\'s closed socket released');
    const again = await openRawClient(scope, `/signal?token=${alice}`);
    await again.roundTrip();

    // a refusal the client causes is neither an error nor a warning in the log
    expect(server.logs.filter((l) => (l['level'] as number) >= 40)).toEqual([]);
  });

  it('counts nothing per sub with auth off (every caller is the same anonymous sub)', async () => {
    const server = await scope.start({ MAX_CONNECTIONS_PER_SUB: '1' });
    const a = await openRawClient(scope, '/signal');
    const b = await openRawClient(scope, '/signal');
    await Promise.all([a.roundTrip(), b.roundTrip()]);
    expect(server.app.sync.admission.count).toBe(2);
  });
});

describe('a token check slower than the safety net (ws/admission.ts watch)', () => {
  afterEach(() => vi.useRealTimers());

  /** An open socket as admission sees it: its state and its 'close' listeners. */
  const socket = () => Object.assign(new EventEmitter(), { OPEN: 1, readyState: 1 }) as unknown as WebSocket;

  it("the endpoint's later admit with the sub still counts the socket against MAX_CONNECTIONS_PER_SUB, and refuses one past it", () => {
    vi.useFakeTimers();
    const admission = new Admission({ maxConnections: 100, unauthenticatedPerMinute: 100, maxPerSub: 1 });
    const upgrades = [socket(), socket()].map((ws) => {
      const raw = {} as IncomingMessage;
      const req = { ip: '198.51.100.7', raw } as FastifyRequest;
      expect(admission.check(req)).toBeNull();
      admission.watch(ws, raw);
      admission.adopt(ws); // the endpoint's own close listener calls release() (ws/shared-listeners.ts)
      return { ws, req };
    });
    // both tokens still being checked when the safety net admits them, under no sub
    vi.advanceTimersByTime(3000);
    expect(admission.count).toBe(2);
    const [first, second] = upgrades as [(typeof upgrades)[0], (typeof upgrades)[0]];
    expect(admission.admit(first.req, first.ws, 'alice')).toBeNull();
    expect(admission.countOf('alice')).toBe(1);
    expect(admission.admit(second.req, second.ws, 'alice')).toBe('ERR_TOO_MANY_CONNECTIONS_PER_SUB');
    expect(admission.countOf('alice')).toBe(1);
    expect(admission.count).toBe(1);
    // both close: nothing is left counted
    admission.release(second.ws);
    expect(admission.countOf('alice')).toBe(1);
    admission.release(first.ws);
    expect(admission.countOf('alice')).toBe(0);
    expect(admission.count).toBe(0);
    expect(admission.sockets.size).toBe(0);
  });
});

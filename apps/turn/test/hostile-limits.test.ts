/**
 * Limits against hostile clients: the server's own addresses as peers, permissions and
 * channels per allocation, EVEN-PORT reservations, and the control plane's work per request.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { A, METHOD, readXorAddress } from './helpers/stun-client.js';
import { openStunClient, turnPerTest, waitForLog } from './helpers/turn.js';
import { createPeerFilter } from '../src/peer-filter.js';

const scope = turnPerTest();
afterEach(() => scope.close());
const client = (sub = 'alice') => openStunClient(scope, scope.current.creds(sub));

describe('the server\'s own addresses as peers', () => {
  it('refuses ChannelBind and drops Send toward its own listener, loopback peers allowed or not; relay to relay still works', async () => {
    const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
    const alice = await client('alice');
    expect((await alice.allocate()).cls).toBe(2);
    // a permission names no port: granted (relay-only clients of this server reach each other relay to relay)
    expect((await alice.permit('127.0.0.1')).cls).toBe(2);
    expect((await alice.bindChannel(0x4000, '127.0.0.1', t.turn.port)).code).toBe(403);
    // a STUN Binding through the relay to the listener: dropped and counted, never answered
    const binding = Buffer.alloc(20);
    binding.writeUInt16BE(1, 0);
    binding.writeUInt32BE(0x2112a442, 4);
    randomBytes(12).copy(binding, 8);
    alice.sendIndication('127.0.0.1', t.turn.port, binding);
    await waitForLog(t, (e) => e['msg'] === 'send to denied peer dropped' && e['peer'] === `127.0.0.1:${t.turn.port}`);
    expect(await t.metric('turn_denied_peers_total')).toBe(2);
    const bob = await client('bob');
    const bobRelay = readXorAddress((await bob.allocate()).get(A.XOR_RELAYED_ADDRESS)!);
    expect((await bob.permit('127.0.0.1')).cls).toBe(2);
    expect((await alice.bindChannel(0x4001, '127.0.0.1', bobRelay.port)).cls).toBe(2);
    alice.sendChannelData(0x4001, Buffer.from('relay to relay'));
    await bob.received(1);
    expect(bob.inbound[0]!.data.toString()).toBe('relay to relay');
    expect(alice.inbound).toEqual([]);
  });

  it('on a public own address (TURN_EXTERNAL_IP) only the relay port range is open', async () => {
    const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true', TURN_DENY_PEERS: 'private', TURN_EXTERNAL_IP: '203.0.113.7', TURN_MIN_PORT: '41000', TURN_MAX_PORT: '41099' });
    const c = await client();
    expect((await c.allocate()).cls).toBe(2);
    expect((await c.permit('203.0.113.7')).cls).toBe(2);
    expect((await c.bindChannel(0x4000, '203.0.113.7', t.turn.port)).code).toBe(403);
    expect((await c.bindChannel(0x4001, '203.0.113.7', 53)).code).toBe(403);
    expect((await c.bindChannel(0x4002, '203.0.113.7', 41000)).cls).toBe(2);
    // not ours: any port
    expect((await c.bindChannel(0x4003, '203.0.113.8', 53)).cls).toBe(2);
  });

  it('matches its own addresses in every spelling', () => {
    const f = createPeerFilter(['private'], false, { addresses: ['203.0.113.7', '2001:db8::7'], listenPort: 3478, minPort: 49152, maxPort: 65535 });
    for (const a of ['203.0.113.7', '::ffff:203.0.113.7', '::ffff:cb00:7107', '64:ff9b::cb00:7107', '2002:cb00:7107::1', '2001:db8:0:0:0:0:0:7']) {
      expect({ a, listener: f.deniesPort(a, 3478), other: f.deniesPort(a, 53), relay: f.deniesPort(a, 50000) }).toEqual({ a, listener: true, other: true, relay: false });
    }
    expect(f.deniesPort('203.0.113.8', 3478)).toBe(false);
    // loopback allowed: a loopback own address keeps every port but the listener's
    const loop = createPeerFilter(['private'], true, { addresses: ['127.0.0.1'], listenPort: 3478, minPort: 49152, maxPort: 65535 });
    expect([loop.deniesPort('127.0.0.1', 3478), loop.deniesPort('127.0.0.1', 53)]).toEqual([true, false]);
  });
});

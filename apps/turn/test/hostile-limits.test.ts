/**
 * Limits against hostile clients: the server's own addresses as peers, permissions and
 * channels per allocation, EVEN-PORT reservations, and the control plane's work per request.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { A, METHOD, readXorAddress, xorAddress } from './helpers/stun-client.js';
import { canBind, openStunClient, turnPerTest, waitForLog } from './helpers/turn.js';
import { createPeerFilter } from '../src/peer-filter.js';
import { NativeRelay } from '../src/data-plane/native-relay.js';

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

  it('on the external address (TURN_EXTERNAL_IP) only the listener port is denied: users behind the same NAT stay reachable', async () => {
    const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true', TURN_DENY_PEERS: 'private', TURN_EXTERNAL_IP: '203.0.113.7', TURN_MIN_PORT: '41000', TURN_MAX_PORT: '41099' });
    const c = await client();
    expect((await c.allocate()).cls).toBe(2);
    expect((await c.permit('203.0.113.7')).cls).toBe(2);
    expect((await c.bindChannel(0x4000, '203.0.113.7', t.turn.port)).code).toBe(403);
    // a NAT's public address is the srflx address of the users behind it (random NAT ports)
    expect((await c.bindChannel(0x4001, '203.0.113.7', 53)).cls).toBe(2);
    expect((await c.bindChannel(0x4002, '203.0.113.7', 41000)).cls).toBe(2);
    // not ours: any port
    expect((await c.bindChannel(0x4003, '203.0.113.8', 53)).cls).toBe(2);
    // a Send to the listener is dropped and counted (none is sent elsewhere: tests stay on loopback)
    c.sendIndication('203.0.113.7', t.turn.port, Buffer.from('to the listener'));
    await waitForLog(t, (e) => e['msg'] === 'send to denied peer dropped' && e['peer'] === `203.0.113.7:${t.turn.port}`);
    expect(await t.metric('turn_denied_peers_total')).toBe(2);
  });

  it('matches its own addresses in every spelling', () => {
    const f = createPeerFilter(['private'], false, { addresses: ['203.0.113.7', '2001:db8::7'], listenPort: 3478, minPort: 49152, maxPort: 65535 });
    for (const a of ['203.0.113.7', '::ffff:203.0.113.7', '::ffff:cb00:7107', '64:ff9b::cb00:7107', '2002:cb00:7107::1', '2001:db8:0:0:0:0:0:7']) {
      expect({ a, listener: f.deniesPort(a, 3478), other: f.deniesPort(a, 53), relay: f.deniesPort(a, 50000) }).toEqual({ a, listener: true, other: true, relay: false });
    }
    expect(f.deniesPort('203.0.113.8', 3478)).toBe(false);
    // the external (NAT) address: only the listener's port
    const nat = createPeerFilter(['private'], false, { addresses: ['192.0.2.1'], external: ['203.0.113.7'], listenPort: 3478, minPort: 49152, maxPort: 65535 });
    for (const a of ['203.0.113.7', '::ffff:203.0.113.7', '64:ff9b::cb00:7107']) {
      expect({ a, self: nat.isSelf(a), listener: nat.deniesPort(a, 3478), other: nat.deniesPort(a, 53), relay: nat.deniesPort(a, 50000) }).toEqual({ a, self: true, listener: true, other: false, relay: false });
    }
    expect([nat.deniesPort('192.0.2.1', 3478), nat.deniesPort('192.0.2.1', 53), nat.deniesPort('192.0.2.1', 50000)]).toEqual([true, true, false]);
    // loopback allowed: a loopback own address keeps every port but the listener's
    const loop = createPeerFilter(['private'], true, { addresses: ['127.0.0.1'], listenPort: 3478, minPort: 49152, maxPort: 65535 });
    expect([loop.deniesPort('127.0.0.1', 3478), loop.deniesPort('127.0.0.1', 53)]).toEqual([true, false]);
  });
});

/** A CreatePermission with `n` peers 11.x.y.z starting at `from`. */
const permitMany = (c: Awaited<ReturnType<typeof client>>, from: number, n: number) =>
  c.request(METHOD.CREATE_PERMISSION, (txid) => Array.from({ length: n }, (_, i) => {
    const k = from + i;
    return [A.XOR_PEER_ADDRESS, xorAddress(`11.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`, 1, txid)] as [number, Buffer];
  }));

describe('permissions per allocation', () => {
  it('caps peers per CreatePermission and live permissions per allocation with 508, counted; expired ones make room', async () => {
    const t = await scope.start({ TURN_MAX_PEERS_PER_REQUEST: '4', TURN_MAX_PERMISSIONS: '10' });
    const c = await client();
    expect((await c.allocate()).cls).toBe(2);
    expect((await permitMany(c, 0, 5)).code).toBe(508);
    expect((await permitMany(c, 0, 4)).cls).toBe(2);
    expect((await permitMany(c, 4, 4)).cls).toBe(2);
    // all or none: 2 of these 4 would fit
    expect((await permitMany(c, 8, 4)).code).toBe(508);
    // refreshing what is held takes no room
    expect((await permitMany(c, 0, 4)).cls).toBe(2);
    expect((await permitMany(c, 8, 2)).cls).toBe(2);
    expect((await permitMany(c, 10, 1)).code).toBe(508);
    expect((await c.bindChannel(0x4000, '11.9.9.9', 9)).code).toBe(508);
    expect(await t.metric('turn_capacity_rejections_total{limit="peers_per_request"}')).toBe(1);
    expect(await t.metric('turn_capacity_rejections_total{limit="permissions"}')).toBe(3);
    // 300 s later (RFC 8656 lifetime) every permission has expired: removed when room is needed
    const now = Date.now();
    const later = vi.spyOn(Date, 'now').mockReturnValue(now + 301_000);
    try {
      expect((await permitMany(c, 100, 4)).cls).toBe(2);
    } finally {
      later.mockRestore();
    }
  });
});

const EVEN_PORT_R: [number, Buffer] = [A.EVEN_PORT, Buffer.from([0x80, 0, 0, 0])];

describe('EVEN-PORT reservations', () => {
  it('end with the allocation that made them (quota and Refresh 0 bound them), and TURN_MAX_RESERVATIONS caps them in all with 508', async () => {
    const t = await scope.start({ TURN_USER_QUOTA: '1', TURN_MAX_RESERVATIONS: '2', TURN_MIN_PORT: '41100', TURN_MAX_PORT: '41139' });
    const mallory = await client('mallory');
    for (let i = 0; i < 5; i++) {
      const r = await mallory.allocate([EVEN_PORT_R]);
      expect(r.cls).toBe(2);
      expect(r.get(A.RESERVATION_TOKEN)).toBeDefined();
      const port = readXorAddress(r.get(A.XOR_RELAYED_ADDRESS)!).port;
      expect((await mallory.refresh(0)).cls).toBe(2);
      // the reserved N+1 port was closed with the allocation
      expect({ i, free: await canBind(port + 1) }).toEqual({ i, free: true });
    }
    const held = [];
    for (const sub of ['alice', 'bob']) {
      const c = await client(sub);
      const r = await c.allocate([EVEN_PORT_R]);
      expect(r.get(A.RESERVATION_TOKEN)).toBeDefined();
      held.push(c);
    }
    expect((await (await client('carol')).allocate([EVEN_PORT_R])).code).toBe(508);
    expect(await t.metric('turn_capacity_rejections_total{limit="reservations"}')).toBe(1);
    // without R nothing is reserved: not capped
    expect((await (await client('dave')).allocate([[A.EVEN_PORT, Buffer.from([0, 0, 0, 0])]])).cls).toBe(2);
  });
});

describe('control-plane work per request', () => {
  it('ChannelBind and CreatePermission push the native channel list once per request, never scan the bindings, and TURN_MAX_CHANNELS caps bindings with 508', async () => {
    const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true', TURN_MAX_CHANNELS: '40' });
    const native = t.logs.find((l) => l['msg'] === 'turn server listening (UDP)')?.['udpPath'] === 'native';
    const pushes = native ? vi.spyOn(NativeRelay.prototype, 'channels') : undefined;
    const Allocation = createRequire(import.meta.url)('node-turn/lib/allocation.js') as { prototype: { getPeerChannelNumber: () => unknown } };
    const scan = vi.spyOn(Allocation.prototype, 'getPeerChannelNumber');
    try {
      const c = await client();
      expect((await c.allocate()).cls).toBe(2);
      for (let i = 0; i < 40; i++) expect((await c.bindChannel(0x4000 + i, '127.0.0.1', 20000 + i)).cls).toBe(2);
      expect((await c.bindChannel(0x4000 + 40, '127.0.0.1', 20040)).code).toBe(508);
      expect(await t.metric('turn_capacity_rejections_total{limit="channels"}')).toBe(1);
      // a refresh of a bound channel is not a new one
      expect((await c.bindChannel(0x4000, '127.0.0.1', 20000)).cls).toBe(2);
      // a peer bound to another channel: 400, from the peer map
      expect((await c.bindChannel(0x4001, '127.0.0.1', 20000)).code).toBe(400);
      expect(scan).not.toHaveBeenCalled();
      if (pushes) {
        // one push per successful ChannelBind (40 + the refresh), none for the refused ones
        expect(pushes).toHaveBeenCalledTimes(41);
        pushes.mockClear();
        const r = await c.request(METHOD.CREATE_PERMISSION, (txid) => Array.from({ length: 16 }, (_, i) => [A.XOR_PEER_ADDRESS, xorAddress(`127.0.${i >> 8}.${(i & 255) + 1}`, 1, txid)] as [number, Buffer]));
        expect(r.cls).toBe(2);
        expect(pushes).toHaveBeenCalledTimes(1);
      }
      expect(native || process.platform !== 'linux').toBe(true);
    } finally {
      pushes?.mockRestore();
      scan.mockRestore();
    }
  });
});

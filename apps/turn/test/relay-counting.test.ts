/**
 * turn_relayed_packets_total counts every relay path: Send indications (ChannelData is in
 * node-turn-fixes.test.ts) toward the peer, Data indications back. And what a permission admits:
 * nothing from an IP without one, but any port of a permitted IP (RFC 5766 section 8). The
 * latter is why one-host WebRTC tests put relays on their own loopback address: with clients and
 * relays all on 127.0.0.1, a permission for a peer's relay also admitted its host socket, and
 * libjuice found a direct path around the relay (see test/e2e/turn-webrtc-node.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { A, readXorAddress } from './helpers/stun-client.js';
import { openStunClient, turnPerTest } from './helpers/turn.js';
import { withTimeout } from '../../../test/helpers/timeout.js';

const TO_PEER = 'turn_relayed_packets_total{direction="to_peer"}';
const TO_CLIENT = 'turn_relayed_packets_total{direction="to_client"}';

const scope = turnPerTest();
afterEach(() => scope.close());

const client = () => openStunClient(scope, scope.current.creds('counting'));

async function udp(address: string, echo = false, recvBufferSize?: number): Promise<Socket> {
  const s = createSocket({ type: 'udp4', recvBufferSize });
  if (echo) s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(0, address);
  await once(s, 'listening');
  scope.track(s);
  return s;
}

describe('relay counting and permissions', () => {
  it('counts Send indications to the peer and Data indications back', async () => {
    const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
    const peer = await udp('127.0.0.1', true);
    const c = await client();
    expect((await c.allocate()).cls).toBe(2);
    expect((await c.permit('127.0.0.1')).cls).toBe(2);
    for (let i = 0; i < 7; i++) c.sendIndication('127.0.0.1', peer.address().port, Buffer.from(`indication ${i}`));
    await c.received(7);
    // no channel bound: every message came back as a Data indication. UDP promises no order
    // (a full-suite run saw one indication overtaken), so compare as a set: each exactly once.
    const inbound = c.inbound.map((m) => [m.channel, m.data.toString()] as const);
    expect([...inbound].sort((a, b) => a[1].localeCompare(b[1]))).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => [undefined, `indication ${i}`]));
    expect(await t.metric(TO_PEER)).toBe(7);
    expect(await t.metric(TO_CLIENT)).toBe(7);
  });

  it('drops (uncounted) what comes from an IP without permission; a permitted IP is admitted on any port', async () => {
    const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true', TURN_RELAY_IP: '127.0.0.2' });
    const c = await client();
    const allocated = await c.allocate();
    const relay = readXorAddress(allocated.get(A.XOR_RELAYED_ADDRESS)!);
    expect(relay.ip).toBe('127.0.0.2');
    expect((await c.permit('127.0.0.1', 9)).cls).toBe(2);
    const stranger = await udp('127.0.0.3');
    const otherPort = await udp('127.0.0.1');
    // loopback queues both in send order on the relay socket: when the second one has been
    // relayed, the first has been handled too
    stranger.send('from 127.0.0.3', relay.port, relay.ip);
    otherPort.send('from 127.0.0.1, a port never named', relay.port, relay.ip);
    await c.received(1);
    expect(c.inbound.map((m) => m.data.toString())).toEqual(['from 127.0.0.1, a port never named']);
    expect(await t.metric(TO_CLIENT)).toBe(1);
    expect(await t.metric(TO_PEER)).toBe(0);
  });

  // libjuice (libdatachannel) sends ChannelData right behind its ChannelBind, and a Send
  // indication right behind its CreatePermission, without waiting for the answer. Both datagrams
  // sit in the listening socket together: the control plane must have put the binding or
  // permission into the data plane before the next datagram is read.
  it('relays ChannelData sent right behind its ChannelBind, before the answer', async () => {
    await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
    const peer = await udp('127.0.0.1', true);
    const c = await client();
    await c.allocate();
    const bound = c.bindChannel(0x4003, '127.0.0.1', peer.address().port);
    c.sendChannelData(0x4003, Buffer.from('right behind ChannelBind'));
    expect((await bound).cls).toBe(2);
    await c.received(1);
    expect(c.inbound.map((m) => [m.channel, m.data.toString()])).toEqual([[0x4003, 'right behind ChannelBind']]);
  });

  it('relays a Send indication sent right behind its CreatePermission, before the answer', async () => {
    await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
    const peer = await udp('127.0.0.1', true);
    const c = await client();
    await c.allocate();
    const permitted = c.permit('127.0.0.1');
    c.sendIndication('127.0.0.1', peer.address().port, Buffer.from('right behind CreatePermission'));
    expect((await permitted).cls).toBe(2);
    await c.received(1);
    expect(c.inbound.map((m) => m.data.toString())).toEqual(['right behind CreatePermission']);
  });

  // The kernel grants at most net.core.rmem_max (doubled): below 1 MB the listener cannot hold the burst anyway.
  const BURST = 1000;
  it.skipIf(Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8')) < 1024 * 1024)(
    'relays a burst that arrives while the process is busy, whole (the listening socket buffers it)',
    async () => {
      const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
      const peer = await udp('127.0.0.1', false, 8 * 1024 * 1024);
      let arrived = 0;
      const all = new Promise<void>((resolve) => peer.on('message', () => ++arrived === BURST && resolve()));
      const c = await client();
      await c.allocate();
      expect((await c.bindChannel(0x4002, '127.0.0.1', peer.address().port)).cls).toBe(2);
      // One synchronous loop: every datagram reaches the listening socket before this process
      // (which is also the TURN server) reads any. The default buffer held about 256 of them.
      for (let i = 0; i < BURST; i++) c.sendChannelData(0x4002, Buffer.alloc(100, i));
      await withTimeout(all, 10_000, `${BURST} datagrams at the peer`).catch(async (err: Error) => {
        throw new Error(`${err.message}: ${arrived} arrived, ${await t.metric(TO_PEER)} relayed`);
      });
      expect(await t.metric(TO_PEER)).toBe(BURST);
    },
  );
});

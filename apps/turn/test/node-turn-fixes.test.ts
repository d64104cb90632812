/** One regression test per node-turn 0.0.6 defect we fix from outside (see src/fixes). */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { baseEnv, runProcess } from '../../../test/helpers/process.js';
import { A, METHOD, readXorAddress, u32 } from './helpers/stun-client.js';
import { canBind, openStunClient, turnPerTest, waitForLog } from './helpers/turn.js';

const scope = turnPerTest();
afterEach(() => scope.close());
const client = (sub = 'alice') => openStunClient(scope, scope.current.creds(sub));
/** A UDP echo peer on loopback. */
async function echoPeer(): Promise<Socket> {
  const s = createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  scope.track(s);
  return s;
}

describe('node-turn fixes', () => {
  it('ChannelBind success carries a valid MESSAGE-INTEGRITY', async () => {
    await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
    const c = await client();
    await c.allocate();
    const bound = await c.bindChannel(0x4000, '127.0.0.1', 9);
    expect(bound.cls).toBe(2);
    expect(bound.get(A.MESSAGE_INTEGRITY)).toBeDefined();
    expect(bound.signed).toBe(true);
  });

  it('relays ChannelData from the client to the peer and back, counted on the TURN side', async () => {
    const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
    const peer = await echoPeer();
    const c = await client();
    await c.allocate();
    expect((await c.bindChannel(0x4001, '127.0.0.1', peer.address().port)).cls).toBe(2);
    for (let i = 0; i < 5; i++) c.sendChannelData(0x4001, Buffer.from(`hello ${i}`));
    await c.received(5);
    expect(c.inbound.map((m) => [m.channel, m.data.toString()])).toEqual([0, 1, 2, 3, 4].map((i) => [0x4001, `hello ${i}`]));
    expect(await t.metric('turn_relayed_packets_total{direction="to_peer"}')).toBe(5);
    expect(await t.metric('turn_relayed_packets_total{direction="to_client"}')).toBe(5);
  });

  it('ChannelBind takes channel numbers 0x4000-0x7FFF like coturn (turnutils_uclient draws 0x7FFF one time in 16,384), with the RFC 8656 conflict rules per allocation', async () => {
    await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
    const port = (await echoPeer()).address().port;
    const c = await client();
    await c.allocate();
    expect((await c.bindChannel(0x7fff, '127.0.0.1', port)).cls).toBe(2);
    c.sendChannelData(0x7fff, Buffer.from('top channel'));
    await c.received(1);
    expect(c.inbound.map((m) => [m.channel, m.data.toString()])).toEqual([[0x7fff, 'top channel']]);
    expect((await c.bindChannel(0x7fff, '127.0.0.1', port)).cls).toBe(2); // same channel, same peer: a refresh
    expect((await c.bindChannel(0x7fff, '127.0.0.1', port + 1)).code).toBe(400); // the channel is bound to another peer
    expect((await c.bindChannel(0x4000, '127.0.0.1', port)).code).toBe(400); // the peer is bound to another channel
    expect((await c.bindChannel(0x3fff, '127.0.0.1', port + 1)).code).toBe(400);
    expect((await c.bindChannel(0x8000, '127.0.0.1', port + 1)).code).toBe(400);
    // channel numbers belong to an allocation: another one binds the same number to the same peer
    const other = await client('bob');
    await other.allocate();
    expect((await other.bindChannel(0x7fff, '127.0.0.1', port)).cls).toBe(2);
  });

  it('Refresh keeps the allocation (node-turn deleted it), LIFETIME 0 releases it and its socket', async () => {
    const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
    const c = await client();
    const relay = readXorAddress((await c.allocate()).get(A.XOR_RELAYED_ADDRESS)!);
    const refreshed = await c.refresh(300);
    expect(refreshed.signed).toBe(true);
    expect(refreshed.get(A.LIFETIME)!.readUInt32BE(0)).toBe(600); // never below the default
    expect((await c.refresh()).cls).toBe(2);
    expect((await c.permit('127.0.0.1')).cls).toBe(2); // still allocated: no 437
    expect(t.turn.allocations).toBe(1);
    expect((await c.refresh(0)).get(A.LIFETIME)!.readUInt32BE(0)).toBe(0);
    expect((await c.permit('127.0.0.1')).code).toBe(437);
    expect(t.turn.allocations).toBe(0);
    expect(await canBind(relay.port)).toBe(true);
  });

  it('honours the requested LIFETIME within TURN_MAX_LIFETIME_SECONDS', async () => {
    let t = await scope.start({ TURN_MAX_LIFETIME_SECONDS: '60' });
    const c = await client();
    expect((await c.allocate([[A.LIFETIME, u32(3600)]])).get(A.LIFETIME)!.readUInt32BE(0)).toBe(60);
    await t.close();
    t = await scope.start();
    const d = await client();
    expect((await d.allocate([[A.LIFETIME, u32(1200)]])).get(A.LIFETIME)!.readUInt32BE(0)).toBe(1200);
  });

  it('an expired allocation closes its relay socket', async () => {
    const t = await scope.start({ TURN_MAX_LIFETIME_SECONDS: '1' });
    const c = await client();
    const relay = readXorAddress((await c.allocate()).get(A.XOR_RELAYED_ADDRESS)!);
    await waitForLog(t, (l) => l['msg'] === 'allocation released' && l['reason'] === 'expired', 4000);
    expect(await canBind(relay.port)).toBe(true);
    expect(await t.metric('turn_allocations')).toBe(0);
  });

  it('answers 420 for unknown comprehension-required attributes, ignores optional ones, understands REQUESTED-ADDRESS-FAMILY', async () => {
    await scope.start();
    const unknown = await (await client()).allocate([[0x0030, Buffer.from([1, 2, 3, 4])]]);
    expect(unknown.code).toBe(420);
    expect(unknown.get(A.UNKNOWN_ATTRIBUTES)!.readUInt16BE(0)).toBe(0x0030);
    expect((await (await client()).allocate([[0xc057, Buffer.from([0, 1, 0, 0])]])).cls).toBe(2);
    expect((await (await client()).allocate([[A.REQUESTED_ADDRESS_FAMILY, Buffer.from([1, 0, 0, 0])]])).cls).toBe(2);
    const v6 = await (await client()).allocate([[A.REQUESTED_ADDRESS_FAMILY, Buffer.from([2, 0, 0, 0])]]);
    expect(v6.code).toBe(440);
    expect(v6.signed).toBe(true);
  });

  it('EVEN-PORT gives an even relay port and a RESERVATION-TOKEN for the next one', async () => {
    await scope.start({ TURN_MIN_PORT: '51000', TURN_MAX_PORT: '51999' });
    const first = await (await client()).allocate([[A.EVEN_PORT, Buffer.from([0x80, 0, 0, 0])]]);
    expect(first.cls).toBe(2);
    const port = readXorAddress(first.get(A.XOR_RELAYED_ADDRESS)!).port;
    expect(port % 2).toBe(0);
    const token = first.get(A.RESERVATION_TOKEN)!;
    expect(token).toHaveLength(8);
    const second = await (await client()).allocate([[A.RESERVATION_TOKEN, token]]);
    expect(readXorAddress(second.get(A.XOR_RELAYED_ADDRESS)!).port).toBe(port + 1);
    expect((await (await client()).allocate([[A.RESERVATION_TOKEN, token]])).code).toBe(508); // used up
    const both = await (await client()).allocate([[A.EVEN_PORT, Buffer.from([0, 0, 0, 0])], [A.RESERVATION_TOKEN, token]]);
    expect(both.code).toBe(400);
    expect(readXorAddress((await (await client()).allocate([[A.EVEN_PORT, Buffer.from([0, 0, 0, 0])]])).get(A.XOR_RELAYED_ADDRESS)!).port % 2).toBe(0);
  });

  it('a second Allocate on a live 5-tuple gets 437 instead of leaking the first', async () => {
    const t = await scope.start();
    const c = await client();
    expect((await c.allocate()).cls).toBe(2);
    expect((await c.allocate()).code).toBe(437);
    expect(t.turn.allocations).toBe(1);
  });

  it('survives malformed datagrams on the listener and runt datagrams from peers', async () => {
    const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
    const peer = await echoPeer();
    const c = await client();
    const relay = readXorAddress((await c.allocate()).get(A.XOR_RELAYED_ADDRESS)!);
    await c.permit('127.0.0.1');
    for (const junk of [Buffer.from([0]), Buffer.from([0x40, 0x00, 0xff, 0xff]), Buffer.alloc(20, 0xff), Buffer.from('0001ffff2112a442', 'hex')]) {
      c.socket.send(junk, t.turn.port, '127.0.0.1');
    }
    peer.send(Buffer.from([1]), relay.port, '127.0.0.1');
    // port 0 on a permitted IP: dgram's send() throws on it, which must not reach the process
    c.sendIndication('127.0.0.1', 0, Buffer.from('to port 0'));
    expect((await c.bindChannel(0x4002, '127.0.0.1', 0)).cls).toBeGreaterThan(0);
    c.sendChannelData(0x4002, Buffer.from('to port 0 too'));
    expect((await c.request(METHOD.BINDING, [], { auth: false })).cls).toBe(2);
    expect((await c.refresh()).cls).toBe(2);
  });

  it('stop() releases every timer and socket: the process exits by itself', async () => {
    const child = runProcess(process.execPath, ['--import', 'tsx', new URL('./fixtures/stop-exits.ts', import.meta.url).pathname], baseEnv());
    scope.track({ close: () => child.kill() });
    const timer = setTimeout(() => void child.kill(), 20_000);
    const { code, signal } = await child.exited;
    clearTimeout(timer);
    const out = child.stdout() + child.stderr();
    expect({ code, signal, out: out.includes('stopped with 0 allocations left') ? 'ok' : out }).toEqual({ code: 0, signal: null, out: 'ok' });
  });
});

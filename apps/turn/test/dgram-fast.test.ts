/**
 * data-plane/dgram-fast.ts: which path is taken (the UDP handle on the Node it was tested on,
 * dgram's public API otherwise), and both paths on real loopback sockets: datagrams intact,
 * the receive hook given back, a closed socket refused as dgram refuses it, and queued sends
 * (forced with Node's --test-udp-no-try-send, which makes every send take the queued path, in
 * a child process with --expose-gc) arriving as sent although the caller dropped its buffers
 * and emptied its lists, and memory freed too early would have been written over
 * (fixtures/queued-sends.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { detectInternals, UdpIo, type RemoteInfo } from '../src/data-plane/dgram-fast.js';
import { baseEnv, exitWithin, runProcess, type RunningProcess } from '../../../test/helpers/process.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { openStunClient, turnPerTest, waitForLog } from './helpers/turn.js';

const opened: Socket[] = [];
const children: RunningProcess[] = [];
const scope = turnPerTest();
afterEach(async () => {
  for (const s of opened.splice(0)) {
    try {
      s.close();
    } catch {
      // closed by the test
    }
  }
  await Promise.all(children.splice(0).map((c) => c.kill()));
  await scope.close();
});

async function bound(ip = '127.0.0.1'): Promise<Socket> {
  const family = ip.includes(':') ? 6 : 4;
  const s = createSocket({ type: family === 6 ? 'udp6' : 'udp4', lookup: (address, _family, cb) => cb(null, address, family) });
  opened.push(s);
  const listening = once(s, 'listening');
  s.bind(0, ip);
  await listening;
  return s;
}

/** `n` datagrams from `io.receive` on `socket`, or a timeout */
function receiveN(io: UdpIo, socket: Socket, n: number): Promise<Array<[Buffer, RemoteInfo]>> {
  const got: Array<[Buffer, RemoteInfo]> = [];
  return withTimeout(new Promise((resolve) => {
    io.receive(socket, (datagram, from) => {
      got.push([datagram, from]);
      if (got.length === n) resolve(got);
    });
  }), 5000, `${n} datagrams`);
}

const NODE_BINDING = (): Record<string, unknown> => (process as unknown as { binding(name: string): Record<string, unknown> }).binding('udp_wrap');

describe('the path decision', () => {
  it('takes the native path on Linux with Node 20, the UDP handle or the public API when told to', () => {
    const node20 = process.versions.node.split('.')[0] === '20';
    const untested = { path: 'dgram', reason: `node ${process.versions.node} not tested` };
    // on Linux the addon is built by npm ci (packages/udp-relay): its absence is a failure here
    expect(new UdpIo(true, true).path).toEqual(node20 ? (process.platform === 'linux' ? { path: 'native' } : { path: 'udp handle', reason: expect.stringContaining('udp-relay') }) : untested);
    expect(new UdpIo(true, false).path).toEqual(node20 ? { path: 'udp handle', reason: 'TURN_UDP_NATIVE=false' } : untested);
    expect(new UdpIo(false, true).path).toEqual({ path: 'dgram', reason: 'TURN_UDP_INTERNALS=false' });
  });

  it('falls back on an untested Node, or a binding not as expected', () => {
    expect(detectInternals('20.20.2', NODE_BINDING).internals).toBeDefined();
    expect(detectInternals('23.0.0', NODE_BINDING)).toEqual({ reason: 'node 23.0.0 not tested' });
    expect(detectInternals('20.1.0', () => { throw new Error('No such binding'); })).toEqual({ reason: 'no udp_wrap binding' });
    expect(detectInternals('20.1.0', () => ({ UDP: NODE_BINDING()['UDP'] }))).toEqual({ reason: 'udp_wrap binding without SendWrap or UDP' });
    // a UDP class the sockets' handles are not instances of: their state is not what we expect
    expect(detectInternals('20.1.0', () => ({ SendWrap: NODE_BINDING()['SendWrap'], UDP: class {} }))).toEqual({ reason: 'dgram socket state not as expected' });
  });

  it('uses the public API for a socket not bound yet', () => {
    const s = createSocket('udp4');
    opened.push(s);
    expect(new UdpIo(true).senderOf(s).viaHandle).toBe(false);
  });

  it('the server logs which path it takes, and relays on each', async () => {
    for (const [env, path] of [[{}, 'native'], [{ TURN_UDP_NATIVE: 'false' }, 'udp handle'], [{ TURN_UDP_INTERNALS: 'false' }, 'dgram']] as const) {
      const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true', ...env });
      const line = await waitForLog(t, (e) => e['msg'] === 'turn server listening (UDP)');
      expect(line['udpPath']).toBe(path);
      const peer = await bound();
      peer.on('message', (m, r) => peer.send(m, r.port, r.address));
      const c = await openStunClient(scope, t.creds('path'));
      expect((await c.allocate()).cls).toBe(2);
      expect((await c.permit('127.0.0.1')).cls).toBe(2);
      c.sendIndication('127.0.0.1', peer.address().port, Buffer.from(`via ${path}`));
      await c.received(1);
      // and ChannelData both ways (on the native path relayed in C)
      expect((await c.bindChannel(0x4001, '127.0.0.1', peer.address().port)).cls).toBe(2);
      c.sendChannelData(0x4001, Buffer.from(`channel via ${path}`));
      await c.received(2);
      expect(c.inbound.map((m) => m.data.toString())).toEqual([`via ${path}`, `channel via ${path}`]);
      expect(c.inbound[1]?.channel).toBe(0x4001);
      // both ChannelData datagrams (to the peer, back to the client) relayed in C on the native path only
      expect(await t.metric('turn_relayed_native_packets_total')).toBe(path === 'native' ? 2 : 0);
      expect(await t.metric('turn_relayed_packets_total{direction="to_peer"}')).toBe(2);
      await scope.close();
    }
  });
});

describe.each([true, false])('sends and receives (UDP handle: %s)', (internals) => {
  it('sends buffer lists as one datagram each, the buffers free again at once', async () => {
    const io = new UdpIo(internals);
    const [a, b] = [await bound(), await bound()];
    const sender = io.senderOf(a);
    expect(sender.viaHandle).toBe(internals);
    const received = receiveN(io, b, 3);
    const header = Buffer.from([0x40, 0x00, 0x00, 0x05]);
    const list = [header, Buffer.from('hello')];
    expect(sender.send(list, b.address().port, '127.0.0.1')).toBe(true);
    header.writeUInt16BE(0x4001, 0);
    list[1] = Buffer.from('again');
    expect(sender.send(list, b.address().port, '127.0.0.1')).toBe(true);
    expect(sender.send([Buffer.from('sub-payload').subarray(4)], b.address().port, '127.0.0.1')).toBe(true);
    const got = await received;
    expect(got.map(([d]) => d.toString('hex'))).toEqual([
      Buffer.concat([Buffer.from([0x40, 0, 0, 5]), Buffer.from('hello')]).toString('hex'),
      Buffer.concat([Buffer.from([0x40, 1, 0, 5]), Buffer.from('again')]).toString('hex'),
      Buffer.from('payload').toString('hex'),
    ]);
    expect(got.every(([, from]) => from.address === '127.0.0.1' && from.port === a.address().port)).toBe(true);
  });

  it('IPv6: dgram gives a udp6 socket its own send, which the handle path takes too', async () => {
    const io = new UdpIo(internals);
    const [a, b] = [await bound('::1'), await bound('::1')];
    expect(io.senderOf(a).viaHandle).toBe(internals);
    const received = receiveN(io, b, 1);
    expect(io.senderOf(a).send([Buffer.from('six')], b.address().port, '::1')).toBe(true);
    const [[datagram, from]] = (await received) as [[Buffer, { address: string; port: number }]];
    expect([datagram.toString(), from.address, from.port]).toEqual(['six', '::1', a.address().port]);
  });

  it('gives the socket back to its message listeners; a closed socket throws as dgram does', async () => {
    const io = new UdpIo(internals);
    const [a, b] = [await bound(), await bound()];
    const first = receiveN(io, b, 1);
    io.senderOf(a).send([Buffer.from('one')], b.address().port, '127.0.0.1');
    expect((await first)[0]![0].toString()).toBe('one');
    io.stopReceiving(b);
    const second = withTimeout(once(b, 'message'), 5000, 'a message event');
    io.senderOf(a).send([Buffer.from('two')], b.address().port, '127.0.0.1');
    expect(String((await second)[0])).toBe('two');
    a.close();
    expect(() => io.senderOf(a).send([Buffer.from('three')], b.address().port, '127.0.0.1')).toThrow(/Not running/);
  });
});

describe('a queued send', () => {
  it('keeps the buffers alive until sent: every datagram arrives as sent, with reused lists and freed memory written over', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/queued-sends.ts', import.meta.url));
    const child = runProcess(process.execPath, ['--test-udp-no-try-send', '--expose-gc', '--import', 'tsx', fixture], baseEnv());
    children.push(child);
    const exit = await exitWithin(child, 20_000);
    expect({ exit: exit.code, signal: exit.signal, out: child.stdout().trim(), err: child.stderr().slice(-500) }).toMatchObject({ exit: 0, signal: null, out: 'queued 256 received 256 intact 256' });
  });
});

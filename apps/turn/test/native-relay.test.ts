/**
 * data-plane/native-relay.ts and packages/udp-relay/src/udp-relay.c on real loopback sockets: a
 * listening socket L and a relay socket R read by the addon (through UdpIo, as data-plane.ts
 * does), a client C routed to R, a peer P with a channel. Bound ChannelData is relayed in C both
 * ways; everything else comes back to JavaScript byte for byte and is not forwarded; channels,
 * routes and stops behave as the data plane relies on; hostile datagrams relay nothing else.
 * "Nothing forwarded" is checked with a marker sent after, through the same socket: a datagram
 * between two sockets on loopback arrives in order, so the marker arriving alone means nothing
 * came before it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { UdpIo, type RemoteInfo } from '../src/data-plane/dgram-fast.js';
import { loadUdpRelay, type NativeChannel, type NativeRelay } from '../src/data-plane/native-relay.js';
import { withTimeout } from '../../../test/helpers/timeout.js';

const loaded = loadUdpRelay();
// the addon is built on Linux (a build that failed silently must fail here); elsewhere it may be absent
const noAddon = !loaded.addon && process.platform !== 'linux';
// UdpIo offers the native path only where it may use the UDP handle (dgram-fast.ts: TESTED_NODE_MAJORS)
const noInternals = new UdpIo(true).path.path !== 'udp handle';
const skipReason = noAddon ? `no udp-relay addon on ${process.platform}: ${loaded.reason ?? 'unknown'}` : noInternals ? `UDP handle not used on node ${process.versions.node}` : '';

const IP = Buffer.from([127, 0, 0, 1]);
const WAIT_MS = 5000;

const opened: Socket[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) {
    try {
      s.close();
    } catch {
      // closed by the test
    }
  }
});

async function bound(port = 0): Promise<Socket> {
  const s = createSocket({ type: 'udp4', lookup: (address, _family, cb) => cb(null, address, 4) });
  opened.push(s);
  const listening = once(s, 'listening');
  s.bind(port, '127.0.0.1');
  await listening;
  return s;
}

const portOf = (s: Socket): number => s.address().port;

/** What a socket was handed: datagrams in arrival order, and a wait for a count of them. */
class Inbox {
  readonly got: Array<[Buffer, RemoteInfo]> = [];
  private waiters: Array<() => void> = [];

  readonly push = (datagram: Buffer, from: RemoteInfo): void => {
    this.got.push([Buffer.from(datagram), { address: from.address, port: from.port }]);
    for (const w of this.waiters.splice(0)) w();
  };

  get datagrams(): Buffer[] {
    return this.got.map(([d]) => d);
  }

  /** Resolves when `n` datagrams are in; rejects after WAIT_MS naming `what` and how many came. */
  async count(n: number, what: string): Promise<void> {
    const reached = new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.got.length >= n) resolve();
        else this.waiters.push(check);
      };
      check();
    });
    await withTimeout(reached, WAIT_MS, what).catch((err: Error) => {
      throw new Error(`${err.message} (${this.got.length} of ${n} in)`);
    });
  }
}

/** a plain socket's datagrams */
function inboxOf(s: Socket): Inbox {
  const inbox = new Inbox();
  s.on('message', (d, r) => inbox.push(d, r));
  return inbox;
}

function channelData(channel: number, payload: Buffer, declared = payload.length, padding = 0): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16BE(channel, 0);
  header.writeUInt16BE(declared, 2);
  return Buffer.concat([header, payload, Buffer.alloc(padding, 0xee)]);
}

interface Setup {
  io: UdpIo;
  native: NativeRelay;
  L: Socket;
  R: Socket;
  C: Socket;
  P: Socket;
  /** L's and R's JavaScript callbacks */
  toJsL: Inbox;
  toJsR: Inbox;
  atC: Inbox;
  atP: Inbox;
  live: () => NativeChannel;
}

async function setup(): Promise<Setup> {
  const io = new UdpIo(true, true);
  expect(io.path).toEqual({ path: 'native' });
  const native = io.native!;
  const [L, R, C, P] = [await bound(), await bound(), await bound(), await bound()];
  const toJsL = new Inbox();
  const toJsR = new Inbox();
  io.receive(L, toJsL.push, false);
  io.receive(R, toJsR.push, true);
  expect(native.route(R, L, IP, portOf(C))).toBe(true);
  const live = (): NativeChannel => [0x4001, IP, portOf(P), Date.now() + 60_000];
  expect(native.channels(R, [live()])).toBe(1);
  native.takeCounts();
  return { io, native, L, R, C, P, toJsL, toJsR, atC: inboxOf(C), atP: inboxOf(P), live };
}

/** ChannelData on `number` from the client to L: relayed by the addon, the peer's `n`th (and last) datagram is the payload alone. */
async function relayedToPeer(s: Setup, number: number, payload: string, n: number): Promise<void> {
  s.C.send(channelData(number, Buffer.from(payload)), portOf(s.L), '127.0.0.1');
  await s.atP.count(n, `channel 0x${number.toString(16)} at the peer`);
  expect(s.atP.datagrams).toHaveLength(n);
  expect(s.atP.datagrams[n - 1]).toEqual(Buffer.from(payload));
}

/** ChannelData on `number` from the client to L: not relayed, handed to L's JavaScript as sent (its `n`th and last datagram). */
async function handedToJavaScript(s: Setup, number: number, payload: string, n: number): Promise<void> {
  const sent = channelData(number, Buffer.from(payload));
  s.C.send(sent, portOf(s.L), '127.0.0.1');
  await s.toJsL.count(n, `channel 0x${number.toString(16)} in JavaScript`);
  expect(s.toJsL.datagrams).toHaveLength(n);
  expect(s.toJsL.datagrams[n - 1]).toEqual(sent);
}

const zeroCounts = { toPeerBytes: 0, toPeerPackets: 0, toClientBytes: 0, toClientPackets: 0, sendDrops: 0, toJavaScript: 0 };

/** Send `marker` from `from` to `to` (a socket's own send, not the addon's) and wait until `inbox` has `n` datagrams, the marker last. */
async function marker(from: Socket, to: Socket, inbox: Inbox, n: number, what: string): Promise<void> {
  const m = Buffer.from(`marker ${what}`);
  from.send(m, portOf(to), '127.0.0.1');
  await inbox.count(n, `marker ${what}`);
  expect(inbox.datagrams[n - 1]).toEqual(m);
}

it('the udp-relay addon is built on Linux', () => {
  if (process.platform === 'linux') expect(loaded.reason).toBeUndefined();
});

describe.skipIf(noAddon || noInternals)(`NativeRelay on loopback${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('relays a bound channel from the client to the peer: the declared payload only, from the relay port, not through JavaScript', async () => {
    const s = await setup();
    const payload = Buffer.from('hello peer');
    s.C.send(channelData(0x4001, payload, payload.length, 3), portOf(s.L), '127.0.0.1');
    await s.atP.count(1, 'ChannelData at the peer');
    expect(s.atP.got).toEqual([[payload, { address: '127.0.0.1', port: portOf(s.R) }]]);
    expect(s.native.takeCounts()).toEqual({ ...zeroCounts, toPeerPackets: 1, toPeerBytes: payload.length });
    // nothing reached JavaScript: a datagram L hands there after ours arrives alone
    const probe = Buffer.from([0x00, 0x01, 0x00, 0x00]);
    s.C.send(probe, portOf(s.L), '127.0.0.1');
    await s.toJsL.count(1, 'the probe in JavaScript');
    expect(s.toJsL.datagrams).toEqual([probe]);
  });

  it('relays a peer datagram to the client as ChannelData, from the listening port', async () => {
    const s = await setup();
    const payload = Buffer.from('hello client');
    s.P.send(payload, portOf(s.R), '127.0.0.1');
    await s.atC.count(1, 'ChannelData at the client');
    expect(s.atC.got).toEqual([[channelData(0x4001, payload), { address: '127.0.0.1', port: portOf(s.L) }]]);
    expect(s.native.takeCounts()).toEqual({ ...zeroCounts, toClientPackets: 1, toClientBytes: payload.length });
    // nothing reached JavaScript: a datagram R hands there after ours arrives alone
    const probe = Buffer.from('from no peer');
    s.C.send(probe, portOf(s.R), '127.0.0.1');
    await s.toJsR.count(1, 'the probe in JavaScript');
    expect(s.toJsR.datagrams).toEqual([probe]);
  });

  it('hands everything else to JavaScript byte for byte, and forwards none of it', async () => {
    const s = await setup();
    const [C2, P2, P3] = [await bound(), await bound(), await bound()];
    const atP2 = inboxOf(P2);
    const atP3 = inboxOf(P3);
    // 0x4003: P3's channel, expired
    expect(s.native.channels(s.R, [s.live(), [0x4003, IP, portOf(P3), Date.now() - 1000]])).toBe(2);
    const fromC: Array<[string, Buffer]> = [
      ['unknown channel', channelData(0x4002, Buffer.from('x'.repeat(20)))],
      ['expired channel', channelData(0x4003, Buffer.from('expired'))],
      ['declared length past the datagram', channelData(0x4001, Buffer.from('short'), 6)],
      ['3 bytes', Buffer.from([0x40, 0x01, 0x00])],
      ['empty', Buffer.alloc(0)],
      ['STUN (0x00)', Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), Buffer.alloc(12, 7)])],
      ['STUN (0x01)', Buffer.concat([Buffer.from([0x01, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), Buffer.alloc(12, 9)])],
      ['first byte past 0x7F', channelData(0x8001, Buffer.from('nope'))],
    ];
    // one at a time, so that a failure names the case
    for (const [i, [what, d]] of fromC.entries()) {
      s.C.send(d, portOf(s.L), '127.0.0.1');
      await s.toJsL.count(i + 1, `${what} in JavaScript`);
    }
    const unrouted = channelData(0x4001, Buffer.from('not routed'));
    C2.send(unrouted, portOf(s.L), '127.0.0.1');
    await s.toJsL.count(fromC.length + 1, 'ChannelData from an unrouted client in JavaScript');
    const cPort = { address: '127.0.0.1', port: portOf(s.C) };
    expect(s.toJsL.got).toEqual([...fromC.map(([, d]): [Buffer, RemoteInfo] => [d, cPort]), [unrouted, { address: '127.0.0.1', port: portOf(C2) }]]);

    // peers without a live channel: P2 has none, P3's expired
    const fromP2 = Buffer.from('no channel');
    const fromP3 = Buffer.from('expired channel');
    P2.send(fromP2, portOf(s.R), '127.0.0.1');
    await s.toJsR.count(1, 'the peer without a channel in JavaScript');
    P3.send(fromP3, portOf(s.R), '127.0.0.1');
    await s.toJsR.count(2, 'the peer of an expired channel in JavaScript');
    expect(s.toJsR.got).toEqual([
      [fromP2, { address: '127.0.0.1', port: portOf(P2) }],
      [fromP3, { address: '127.0.0.1', port: portOf(P3) }],
    ]);
    expect(s.native.takeCounts()).toEqual({ ...zeroCounts, toJavaScript: fromC.length + 3 });

    // nothing forwarded: each marker, sent after through the socket the addon forwards through, arrives alone
    await marker(s.R, s.P, s.atP, 1, 'R to P');
    await marker(s.R, P3, atP3, 1, 'R to P3');
    await marker(s.R, P2, atP2, 1, 'R to P2');
    await marker(s.L, s.C, s.atC, 1, 'L to C');
  });

  it('holds at most 8 channels, skips entries of the other family or with an invalid number, and replaces the set', async () => {
    const s = await setup();
    const ten = Array.from({ length: 10 }, (_, i): NativeChannel => [0x4001 + i, IP, portOf(s.P), Date.now() + 60_000]);
    expect(s.native.channels(s.R, ten)).toBe(8);
    // the 8th is relayed, the 9th is left to JavaScript
    await relayedToPeer(s, 0x4008, 'eighth', 1);
    await handedToJavaScript(s, 0x4009, 'ninth', 1);

    const expires = Date.now() + 60_000;
    const ipv6 = Buffer.alloc(16);
    ipv6[15] = 1;
    expect(s.native.channels(s.R, [[0x4001, ipv6, portOf(s.P), expires]])).toBe(0);
    // an expiry that is not a finite number would never expire: not held
    expect(s.native.channels(s.R, [[0x4001, IP, portOf(s.P), Number.NaN], [0x4002, IP, portOf(s.P), Number.POSITIVE_INFINITY]])).toBe(0);
    expect(s.native.channels(s.R, [[0x3fff, IP, portOf(s.P), expires], [0x8000, IP, portOf(s.P), expires], [0x4001, IP, 0, expires]])).toBe(0);
    // numbers are whole and in range, not wrapped or truncated: 2^32 + 0x4001 is not 0x4001, 2^32 + port is not port
    const wrapped: NativeChannel[] = [
      [2 ** 32 + 0x4001, IP, portOf(s.P), expires],
      [0x4001, IP, 2 ** 32 + portOf(s.P), expires],
      [0x4001 + 0.5, IP, portOf(s.P), expires],
      [0x4001, IP, portOf(s.P) + 0.5, expires],
      [-0x4001, IP, portOf(s.P), expires],
    ];
    expect(s.native.channels(s.R, wrapped)).toBe(0);
    expect(s.native.channels(s.R, [[0x4001, ipv6, portOf(s.P), expires], [0x4002, IP, portOf(s.P), expires], [0x3fff, IP, portOf(s.P), expires]])).toBe(1);
    // the set was replaced: 0x4001 is no longer held, 0x4002 is
    await handedToJavaScript(s, 0x4001, 'old', 2);
    await relayedToPeer(s, 0x4002, 'new', 2);
  });

  it('reads a channel list whose getters call channels() or stop the relay: the call holds its own set (at most 8), none once stopped', async () => {
    const s = await setup();
    const expires = Date.now() + 60_000;
    const eight = Array.from({ length: 8 }, (_, i): NativeChannel => [0x4001 + i, IP, portOf(s.P), expires]);
    // JavaScript run while the list is read (a getter) replaces the set with 8 channels: the outer call's one entry replaces those
    const replacing = { get 0() { s.native.channels(s.R, eight); return 0x4009; }, 1: IP, 2: portOf(s.P), 3: expires } as unknown as NativeChannel;
    expect(s.native.channels(s.R, [replacing])).toBe(1);
    await relayedToPeer(s, 0x4009, 'outer', 1);
    await handedToJavaScript(s, 0x4001, 'inner', 1);
    // a getter that throws ends the reading at once, however long the list says it is
    const huge: NativeChannel[] = [{ get 0() { throw new Error('entry getter'); } } as unknown as NativeChannel];
    huge.length = 2 ** 32 - 1;
    const started = Date.now();
    expect(() => s.native.channels(s.R, huge)).toThrow('entry getter');
    expect(Date.now() - started).toBeLessThan(1000);
    // a getter that stops the relay: nothing is held for it
    const stopping = { get 0() { s.native.stop(s.R); return 0x4001; }, 1: IP, 2: portOf(s.P), 3: expires } as unknown as NativeChannel;
    expect(s.native.channels(s.R, [stopping])).toBe(0);
  });

  it('opens only a UDP socket of the family given: a TCP socket at its end would keep the poll readable, and spinning', async () => {
    const addon = loaded.addon!;
    // either end may see the other reset: not this test's concern
    const server = createServer((c) => c.on('error', () => {}).end('over tcp'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const tcp = connect((server.address() as AddressInfo).port, '127.0.0.1');
    tcp.on('error', () => {});
    await once(tcp, 'connect');
    const udp = await bound();
    const fdOf = (handle: unknown): number => (handle as { fd: number }).fd;
    const state = Object.getOwnPropertySymbols(udp).find((k) => k.description === 'state symbol')!;
    const descriptors: Array<[string, number, 4 | 6]> = [
      ['a TCP socket', fdOf((tcp as unknown as { _handle: unknown })._handle), 4],
      ['a UDP socket of the other family', fdOf((udp as unknown as Record<symbol, { handle: unknown }>)[state]!.handle), 6],
    ];
    try {
      for (const [what, fd, family] of descriptors) {
        expect(fd, what).toBeGreaterThan(2);
        expect(() => addon.close(addon.open(fd, family, false, () => {}), new Float64Array(6)), what).toThrow('open: not a UDP socket of that family');
      }
    } finally {
      tcp.destroy();
      server.close();
    }
  });

  it('routes a client on a listening socket to one relay socket only, until that one stops', async () => {
    const s = await setup();
    const R2 = await bound();
    const toJsR2 = new Inbox();
    // a socket not read natively is not routed
    expect(s.native.route(R2, s.L, IP, portOf(s.C))).toBe(false);
    s.io.receive(R2, toJsR2.push, true);
    expect(s.native.route(R2, s.L, IP, portOf(s.C))).toBe(false);
    // routing the same relay again is allowed
    expect(s.native.route(s.R, s.L, IP, portOf(s.C))).toBe(true);
    s.io.stopReceiving(s.R);
    expect(s.native.has(s.R)).toBe(false);
    expect(s.native.route(R2, s.L, IP, portOf(s.C))).toBe(true);
    expect(s.native.channels(R2, [s.live()])).toBe(1);
    s.C.send(channelData(0x4001, Buffer.from('via R2')), portOf(s.L), '127.0.0.1');
    await s.atP.count(1, 'ChannelData at the peer via R2');
    expect(s.atP.got).toEqual([[Buffer.from('via R2'), { address: '127.0.0.1', port: portOf(R2) }]]);
  });

  it("drops a closed listener's routes: a socket opened after it under the same id relays nothing for them", async () => {
    const s = await setup();
    s.io.stopReceiving(s.L);
    // the next socket read natively takes the listener's id (the lowest free one)
    const L2 = await bound();
    const toJsL2 = new Inbox();
    s.io.receive(L2, toJsL2.push, false);
    const data = channelData(0x4001, Buffer.from('to the new listener'));
    s.C.send(data, portOf(L2), '127.0.0.1');
    await toJsL2.count(1, 'ChannelData in the new listener\'s JavaScript');
    expect(toJsL2.datagrams).toEqual([data]);
    await marker(s.C, s.P, s.atP, 1, 'nothing relayed to the peer');
  });

  it('frees the port on stop and close, ignores a socket it does not read, and keeps a stopped socket\'s last counts', async () => {
    const s = await setup();
    // counted on R (peer to client), then R stopped before any takeCounts()
    s.P.send(Buffer.from('last'), portOf(s.R), '127.0.0.1');
    await s.atC.count(1, 'ChannelData at the client');
    const other = await bound();
    s.native.stop(other); // not read natively: nothing happens
    expect(s.native.has(other)).toBe(false);
    const port = portOf(s.R);
    s.native.stop(s.R);
    s.R.close();
    const again = await bound(port);
    expect(portOf(again)).toBe(port);
    expect(s.native.takeCounts()).toEqual({ ...zeroCounts, toClientPackets: 1, toClientBytes: 4 });
    expect(s.native.takeCounts()).toEqual(zeroCounts);
  });

  it('frees the port when a natively read socket is only closed (UdpIo stops it on close)', async () => {
    const s = await setup();
    const port = portOf(s.R);
    const closed = once(s.R, 'close');
    s.R.close();
    await closed;
    expect(s.native.has(s.R)).toBe(false);
    const again = await bound(port);
    expect(portOf(again)).toBe(port);
  });

  it('survives hostile datagrams and relays only valid ChannelData of its channel', async () => {
    const s = await setup();
    const [C2, P2] = [await bound(), await bound()];
    // mulberry32: the same datagrams on every run
    let seed = 0x5eed1234;
    const random = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const int = (n: number): number => Math.floor(random() * n);
    const datagram = (): Buffer => {
      const d = Buffer.alloc(int(1501));
      for (let i = 0; i < d.length; i++) d[i] = int(256);
      const kind = int(3);
      if (kind >= 1 && d.length >= 1) d[0] = 0x40 + int(0x40);
      if (kind === 2 && d.length >= 4) {
        d.writeUInt16BE(int(2) === 0 ? 0x4001 : 0x4000 + int(0x4000), 0);
        // around the datagram's own payload length, sometimes past it, sometimes anything
        d.writeUInt16BE(int(4) === 0 ? int(0x10000) : Math.max(0, d.length - 4 - int(8) + int(8)), 2);
      }
      return d;
    };
    const relayable = (d: Buffer): boolean => d.length >= 4 && d.readUInt16BE(0) === 0x4001 && 4 + d.readUInt16BE(2) <= d.length;

    // relay: the routed client (valid 0x4001 ChannelData to P, the rest to L's JavaScript) and the
    // channel's peer (everything to C as ChannelData); all other streams go to JavaScript whole
    const streams: Array<{ from: Socket; to: Socket; relay?: boolean }> = [
      { from: s.C, to: s.L, relay: true },
      { from: C2, to: s.L },
      { from: s.P, to: s.L },
      { from: s.P, to: s.R, relay: true },
      { from: P2, to: s.R },
      { from: s.C, to: s.R },
    ];
    const expectAtP: Buffer[] = [];
    const expectAtC: Buffer[] = [];
    const expectJs = new Map<Inbox, Map<number, Buffer[]>>([[s.toJsL, new Map()], [s.toJsR, new Map()]]);
    let jsL = 0;
    let jsR = 0;
    const TOTAL = 3000;
    // a round stays well inside a socket's receive buffer, so nothing is dropped and every count is exact
    const ROUND = 40;
    for (let sent = 0; sent < TOTAL; ) {
      for (let i = 0; i < ROUND && sent < TOTAL; i++, sent++) {
        const d = datagram();
        const stream = streams[int(streams.length)]!;
        stream.from.send(d, portOf(stream.to), '127.0.0.1');
        if (stream.to === s.R && stream.relay) expectAtC.push(channelData(0x4001, d));
        else if (stream.relay && relayable(d)) expectAtP.push(d.subarray(4, 4 + d.readUInt16BE(2)));
        else {
          const inbox = stream.to === s.L ? s.toJsL : s.toJsR;
          const port = portOf(stream.from);
          const bySender = expectJs.get(inbox)!;
          bySender.set(port, [...(bySender.get(port) ?? []), d]);
          if (inbox === s.toJsL) jsL++;
          else jsR++;
        }
      }
      await s.atP.count(expectAtP.length, `${expectAtP.length} relayed to the peer after ${sent} sent`);
      await s.atC.count(expectAtC.length, `${expectAtC.length} relayed to the client after ${sent} sent`);
      await s.toJsL.count(jsL, `${jsL} in L's JavaScript after ${sent} sent`);
      await s.toJsR.count(jsR, `${jsR} in R's JavaScript after ${sent} sent`);
    }
    // still relaying, and nothing more came before the last valid datagram in either direction
    const last = Buffer.from('still relaying');
    s.C.send(channelData(0x4001, last), portOf(s.L), '127.0.0.1');
    s.P.send(last, portOf(s.R), '127.0.0.1');
    await s.atP.count(expectAtP.length + 1, 'the last ChannelData at the peer');
    await s.atC.count(expectAtC.length + 1, 'the last datagram at the client');
    expect(s.atP.datagrams).toEqual([...expectAtP, last]);
    expect(s.atC.datagrams).toEqual([...expectAtC, channelData(0x4001, last)]);
    for (const [inbox, bySender] of expectJs) {
      expect(inbox.got.length).toBe([...bySender.values()].reduce((n, l) => n + l.length, 0));
      for (const [port, list] of bySender) expect(inbox.got.filter(([, r]) => r.port === port).map(([d]) => d)).toEqual(list);
    }
    // the seed gives enough of each kind for the test to mean something
    expect(expectAtP.length).toBeGreaterThan(20);
    expect(jsL).toBeGreaterThan(20);
    const counts = s.native.takeCounts();
    expect(counts.toPeerPackets).toBe(expectAtP.length + 1);
    expect(counts.toClientPackets).toBe(expectAtC.length + 1);
    expect(counts.toJavaScript).toBe(jsL + jsR);
    expect(counts.sendDrops).toBe(0);
  });
});

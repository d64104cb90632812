/**
 * The fuzz driver for packages/udp-relay (run by scripts/fuzz-udp-relay.ts, in a process with
 * AddressSanitizer and UndefinedBehaviorSanitizer preloaded, against a build of the addon made
 * with them). Seeded, bounded, loopback only: hostile datagrams to a listening and a relay
 * socket read by the addon (channel numbers at the range edges, declared lengths below, at and
 * above the payload, empty and maximal datagrams, IPv4 and IPv6), raced by hostile control
 * calls (wrong argument types, channel lists with non-finite expiries, wrong address sizes,
 * getters that call back into the addon, sockets closed and reopened with datagrams in
 * flight). The sanitizers end the process on a memory or undefined-behaviour error; this
 * script itself checks that the relay still relays what it must at the end.
 *
 * Environment: UDP_RELAY_ADDON (path of the .node file), FUZZ_SEED, FUZZ_ITERATIONS.
 */
import { createRequire } from 'node:module';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import type { UdpRelayAddon } from '@sync-suite/udp-relay';

const addon = createRequire(import.meta.url)(process.env.UDP_RELAY_ADDON ?? '') as UdpRelayAddon;
const seed = Number(process.env.FUZZ_SEED ?? 1);
const iterations = Number(process.env.FUZZ_ITERATIONS ?? 20_000);

/** mulberry32: the same inputs for the same seed */
let state = seed >>> 0;
function random(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n: number): number => Math.floor(random() * n);
const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;

interface Family {
  type: 'udp4' | 'udp6';
  host: string;
  ip: Buffer;
  family: 4 | 6;
}
const V4: Family = { type: 'udp4', host: '127.0.0.1', ip: Buffer.from([127, 0, 0, 1]), family: 4 };
const V6: Family = { type: 'udp6', host: '::1', ip: Buffer.from([...Array(15).fill(0), 1]), family: 6 };

async function bound(f: Family): Promise<Socket> {
  const s = createSocket({ type: f.type, lookup: (address, _family, cb) => cb(null, address, f.family) });
  s.on('error', () => undefined); // full buffers and the like: the fuzz goes on
  const listening = once(s, 'listening');
  s.bind(0, f.host);
  await listening;
  return s;
}

/** dgram's handle, whose reading is stopped so that only the addon reads the descriptor */
function takeOver(s: Socket): number {
  const symbol = Object.getOwnPropertySymbols(s).find((x) => x.description === 'state symbol');
  const handle = (s as unknown as Record<symbol, { handle: { fd: number; recvStop(): void } }>)[symbol!]!.handle;
  handle.recvStop();
  return handle.fd;
}

interface Lane {
  f: Family;
  L: Socket;
  R: Socket;
  C: Socket;
  P: Socket;
  l: number;
  r: number;
}

let toJs = 0;
const counts = new Float64Array(6);
const totals = { datagrams: 0, controls: 0, thrown: 0, reopened: 0 };

async function lane(f: Family): Promise<Lane> {
  const [L, R, C, P] = [await bound(f), await bound(f), await bound(f), await bound(f)];
  const l = addon.open(takeOver(L), f.family, false, () => toJs++);
  const r = addon.open(takeOver(R), f.family, true, () => toJs++);
  return { f, L, R, C, P, l, r };
}

/** a channel list the addon takes; its numbers are the ones datagrams use most (so the C path relays) */
const LIVE = [0x4000, 0x4001, 0x5a5a, 0x7fff];
function live(x: Lane): Array<[number, Buffer, number, number]> {
  return [[pick(LIVE), x.f.ip, x.P.address().port, Date.now() + 60_000]];
}

function datagram(): Buffer {
  const sizes = [0, 1, 2, 3, 4, 5, 8, 20, 100, 1200, 65_507 - 48, int(2000)];
  const size = pick(sizes);
  const d = Buffer.alloc(size);
  for (let i = 0; i < Math.min(size, 64); i++) d[i] = int(256);
  if (size >= 4 && random() < 0.8) {
    d.writeUInt16BE(random() < 0.5 ? pick(LIVE) : pick([0x3fff, 0x7ffe, 0x8000, 0xffff, int(0x10000)]), 0);
    d.writeUInt16BE(pick([0, size - 4, size - 3, size - 5, 0xffff, int(0x10000)].map((n) => Math.max(0, Math.min(0xffff, n)))), 2);
  }
  return d;
}

function hostileChannels(x: Lane): unknown {
  const entry = (): unknown => {
    switch (int(8)) {
      case 0:
        return [0x4000 + int(0x4000), x.f.ip, x.P.address().port, pick([NaN, Infinity, -Infinity, -1, 0, Date.now() + 60_000])];
      case 1:
        return [0x4000, pick([Buffer.alloc(0), Buffer.alloc(3), Buffer.alloc(16), Buffer.alloc(4), Buffer.from('fe80000000000000000000000000000a', 'hex')]), int(70_000), Date.now() + 1000];
      case 2:
        return [pick([-1, 0x3fff, 0x8000, 2 ** 32 + 0x4000, 1.5, '16384']), x.f.ip, x.P.address().port, Date.now() + 1000];
      case 3:
        return null;
      case 4:
        return 'x';
      case 5:
        // a getter that calls back into the addon while the list is read
        return Object.defineProperty([0x4001, x.f.ip, x.P.address().port, 0], 3, {
          get: () => {
            try {
              addon.channels(x.r, live(x));
              addon.counters(x.r, counts);
            } catch {
              totals.thrown++;
            }
            return Date.now() + 60_000;
          },
        });
      case 6:
        return Object.defineProperty([0x4002, x.f.ip, 1, 0], 0, {
          get: () => {
            throw new Error('getter');
          },
        });
      default:
        return live(x)[0];
    }
  };
  // half the lists are mostly valid (more entries than the addon holds), half anything goes
  const valid = random() < 0.5;
  return Array.from({ length: pick([0, 1, 8, 9, 64, 1000]) }, () => (valid && random() < 0.9 ? live(x)[0] : entry()));
}

async function reopen(x: Lane, which: 'L' | 'R'): Promise<void> {
  const old = x[which];
  addon.close(which === 'L' ? x.l : x.r, counts);
  old.close();
  const fresh = await bound(x.f);
  x[which] = fresh;
  if (which === 'L') x.l = addon.open(takeOver(fresh), x.f.family, false, () => toJs++);
  else x.r = addon.open(takeOver(fresh), x.f.family, true, () => toJs++);
  addon.route(x.r, x.l, x.f.ip, x.C.address().port);
  addon.channels(x.r, live(x));
  totals.reopened++;
}

function control(x: Lane): void {
  totals.controls++;
  const bad: unknown[] = [undefined, null, -1, 2 ** 32, 2 ** 53, NaN, 'a', {}, [], Buffer.alloc(1)];
  const calls: Array<() => unknown> = [
    () => addon.channels(x.r, hostileChannels(x) as never),
    () => addon.channels(pick(bad) as number, live(x)),
    () => addon.route(x.r, x.l, pick([x.f.ip, Buffer.alloc(0), Buffer.alloc(16), Buffer.alloc(5)]), pick([0, 1, 65_535, 65_536, -1, x.C.address().port])),
    () => addon.route(pick(bad) as number, pick(bad) as number, pick(bad) as Buffer, pick(bad) as number),
    () => addon.counters(pick([x.l, x.r, ...bad]) as number, pick([counts, new Float64Array(2), new Float32Array(6), [], undefined]) as Float64Array),
    () => addon.close(pick(bad) as number, counts),
    () => addon.open(pick([-1, 0, 2 ** 31, 99_999]), pick([4, 6, 5]) as 4, pick([true, false]), () => undefined),
  ];
  try {
    pick(calls)();
  } catch {
    totals.thrown++;
  }
  // put the route and a channel back most of the time, so that datagrams keep taking the C path
  if (random() < 0.7) {
    addon.route(x.r, x.l, x.f.ip, x.C.address().port);
    addon.channels(x.r, live(x));
  }
}

const lanes = [await lane(V4), await lane(V6)];
for (const x of lanes) {
  addon.route(x.r, x.l, x.f.ip, x.C.address().port);
  addon.channels(x.r, live(x));
}

for (let i = 0; i < iterations; i++) {
  const x = pick(lanes);
  const roll = random();
  if (roll < 0.45) {
    x.C.send(datagram(), x.L.address().port, x.f.host);
    totals.datagrams++;
  } else if (roll < 0.8) {
    x.P.send(datagram(), x.R.address().port, x.f.host);
    totals.datagrams++;
  } else if (roll < 0.98) {
    control(x);
  } else {
    await reopen(x, pick(['L', 'R'] as const));
  }
  // let the loop run the addon's polls now and then, with datagrams in flight
  if (i % 32 === 31) await new Promise((resolve) => setImmediate(resolve));
}

// still relays what it must: a live channel's ChannelData reaches the peer, byte for byte
for (const x of lanes) {
  const number = 0x4abc;
  addon.route(x.r, x.l, x.f.ip, x.C.address().port);
  expectHeld(addon.channels(x.r, [[number, x.f.ip, x.P.address().port, Date.now() + 60_000]]));
  const payload = Buffer.from(`marker ${x.f.type}`);
  const got = new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${x.f.type}: the marker did not reach the peer`)), 10_000);
    x.P.on('message', (d) => {
      if (d.equals(payload)) {
        clearTimeout(timer);
        resolve(d);
      }
    });
  });
  const header = Buffer.alloc(4);
  header.writeUInt16BE(number, 0);
  header.writeUInt16BE(payload.length, 2);
  // a few tries: the peer's socket may be full of fuzz datagrams, and UDP drops
  const sender = setInterval(() => x.C.send(Buffer.concat([header, payload]), x.L.address().port, x.f.host), 50);
  try {
    await got;
  } finally {
    clearInterval(sender);
  }
}

function expectHeld(held: number): void {
  if (held !== 1) throw new Error(`channels() held ${held}, expected 1`);
}

for (const x of lanes) {
  addon.counters(x.l, counts);
  addon.counters(x.r, counts);
  addon.close(x.l, counts);
  addon.close(x.r, counts);
  for (const s of [x.L, x.R, x.C, x.P]) s.close();
}
console.log(JSON.stringify({ seed, iterations, ...totals, toJavaScript: toJs, toPeerPackets: counts[1], toClientPackets: counts[3], sendDrops: counts[4] }));

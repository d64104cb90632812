/**
 * LiveSockets' indexes hold a key's one socket directly and a Set from the second on
 * (auth/live-sockets.ts): revocation and expiry reach exactly the sockets registered under a
 * key, as sockets come and go past one and two.
 */
import type { ServerMetrics } from '@sync-suite/shared/node';
import { describe, expect, it, vi } from 'vitest';
import { LiveSockets, type LiveSocket } from '../src/auth/live-sockets.js';

const metrics = { tokenClosures: { inc: () => undefined } } as unknown as ServerMetrics;

function socket(sub: string, jti: string, exp: number, closed: string[]): LiveSocket {
  return { sub, jti, exp, endpoint: 'signal', closeForToken: () => closed.push(jti) };
}

describe('LiveSockets', () => {
  it('revokes by sub and by jti the sockets registered now, as a key goes from one socket to several and back', () => {
    const closed: string[] = [];
    const live = new LiveSockets({ graceSeconds: 0, metrics, now: () => 0 });
    const [a, b, c] = ['a', 'b', 'c'].map((jti) => socket('u1', jti, 3600, closed));
    live.add(a!);
    live.add(b!); // the sub's second socket
    live.remove(a!); // back to one
    expect(live.revoke({ jti: 'a' })).toBe(0);
    live.add(c!); // two again
    live.remove(b!);
    live.remove(c!); // none
    live.add(b!);
    expect(live.revoke({ sub: 'u1' })).toBe(1);
    expect(closed).toEqual(['b']);
    live.add(a!);
    live.add(c!);
    expect(live.revoke({ sub: 'u1' })).toBe(2);
    expect(closed.sort()).toEqual(['a', 'b', 'c']);
    expect(live.size).toBe(0);
    live.stop();
  });

  it('closes on expiry the sockets of a deadline second, one or several', () => {
    const closed: string[] = [];
    let ms = 0;
    const live = new LiveSockets({ graceSeconds: 0, metrics, now: () => ms });
    const first = [socket('u1', 'a', 10, closed), socket('u2', 'b', 10, closed), socket('u3', 'c', 10, closed)];
    const later = socket('u4', 'd', 20, closed);
    for (const s of [...first, later]) live.add(s);
    live.remove(first[1]!);
    live.remove(first[2]!); // the second's bucket is down to one socket
    ms = 10_000;
    live.sweep();
    expect(closed).toEqual(['a']);
    ms = 20_000;
    live.sweep();
    expect(closed).toEqual(['a', 'd']);
    live.stop();
  });
  // RFC 7519 allows a NumericDate with a fraction; verifyRoomToken accepts one (an issuer writing
  // Date.now() / 1000 + ttl). Such a socket must still be closed once exp + grace has passed.
  it('closes on expiry a socket whose exp has a fraction', () => {
    const closed: string[] = [];
    let ms = 0;
    const live = new LiveSockets({ graceSeconds: 30, metrics, now: () => ms });
    live.add(socket('u1', 'a', 10.5, closed));
    ms = 40_000;
    live.sweep();
    expect(closed).toEqual([]);
    ms = 41_000;
    live.sweep();
    expect(closed).toEqual(['a']);
    expect(live.size).toBe(0);
    live.stop();
  });
  // Property, over random adds, removes, revocations and sweeps on a clock that moves forward
  // (sometimes by days): revocation closes exactly the registered sockets of a sub or jti; a sweep
  // closes no socket before exp + grace and keeps none past it (one added in the sweep's own
  // second waits for the next); each socket is closed at most once per registration; the indexes
  // hold a single socket or a Set of two or more, and nothing once every socket is gone.
  it('matches a plain model over random operations', () => {
    const seed = Date.now() % 1_000_000;
    let x = seed;
    const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const int = (n: number) => Math.floor(rand() * n);
    for (let run = 0; run < 100; run++) {
      let ms = 1_700_000_000_000 + int(1000);
      const grace = int(3) === 0 ? 0 : 30;
      const live = new LiveSockets({ graceSeconds: grace, metrics, now: () => ms });
      const closes = new Map<LiveSocket, number>();
      const registered = new Map<LiveSocket, number>(); // socket -> the second it was added
      const pool = Array.from({ length: 12 }, () => {
        const exp = int(4) === 0 ? Number.MAX_SAFE_INTEGER : Math.floor(ms / 1000) + int(120) - 40 + (int(4) === 0 ? 0.5 : 0);
        const s: LiveSocket = {
          sub: `u${int(3)}`, jti: int(3) === 0 ? undefined : `j${int(4)}`, exp, endpoint: 'signal',
          closeForToken: () => {
            closes.set(s, (closes.get(s) ?? 0) + 1);
            expect(registered.has(s), `seed ${seed}: closed while not registered`).toBe(true);
            registered.delete(s);
          },
        };
        return s;
      });
      for (let step = 0; step < 200; step++) {
        const context = `seed ${seed} run ${run} step ${step}`;
        const s = pool[int(pool.length)]!;
        const op = int(10);
        if (op < 4) {
          if (!registered.has(s)) {
            registered.set(s, Math.floor(ms / 1000));
            live.add(s);
          }
        } else if (op < 6) {
          live.remove(s);
          registered.delete(s);
        } else if (op < 7) {
          const match = int(2) === 0 ? { sub: s.sub } : { jti: s.jti ?? 'none' };
          const hit = [...registered.keys()].filter((r) => (match.sub !== undefined && r.sub === match.sub) || (match.jti !== undefined && r.jti === match.jti));
          expect(live.revoke(match), context).toBe(hit.length);
          for (const r of hit) expect(registered.has(r), context).toBe(false);
        } else {
          ms += int(20) === 0 ? int(3) * 86_400_000 : int(3000);
          const nowSec = Math.floor(ms / 1000);
          const before = new Set(registered.keys());
          live.sweep();
          for (const r of before) {
            const due = Math.ceil(r.exp + grace) <= nowSec && r.exp < Number.MAX_SAFE_INTEGER;
            const closed = !registered.has(r);
            if (closed) expect(due, `${context}: closed before exp + grace`).toBe(true);
            else if (due) expect(registered.get(r), `${context}: kept past exp + grace`).toBe(nowSec);
          }
        }
        expect(live.size, context).toBe(registered.size);
        for (const n of closes.values()) expect(n, context).toBe(1);
        closes.clear();
        const indexes = live as unknown as Record<'bySub' | 'byJti' | 'buckets', Map<unknown, unknown>>;
        for (const map of [indexes.bySub, indexes.byJti, indexes.buckets]) {
          for (const entry of map.values()) if (entry instanceof Set) expect(entry.size, context).toBeGreaterThan(1);
        }
      }
      for (const s of [...registered.keys()]) live.remove(s);
      const indexes = live as unknown as Record<'bySub' | 'byJti' | 'buckets', Map<unknown, unknown>>;
      expect([indexes.bySub.size, indexes.byJti.size, indexes.buckets.size, live.size]).toEqual([0, 0, 0, 0]);
      live.stop();
    }
  });
  // Date.now() can step forward by days or years (a VM resumed, a clock set at boot): the sweep
  // walked every second in between, one Map lookup each (50 years: 1.6e9, seconds of blocked loop).
  it('after the clock steps forward by days, a sweep looks up the buckets, not every second between', () => {
    const closed: string[] = [];
    let ms = 1_000_000;
    const live = new LiveSockets({ graceSeconds: 0, metrics, now: () => ms });
    live.add(socket('u1', 'a', 1_100, closed));
    live.add(socket('u2', 'b', 1_000_000_000, closed));
    ms += 1e9; // 11.6 days
    const get = vi.spyOn(Map.prototype, 'get');
    try {
      live.sweep();
      expect(get.mock.calls.length).toBeLessThan(100);
    } finally {
      get.mockRestore();
    }
    expect(closed).toEqual(['a']);
    expect(live.size).toBe(1);
    live.stop();
  });
});

/**
 * limits/new-rooms.ts's in-process count (NewRoomLimiter) against a model of a sliding hour per
 * sub (a Map of room -> when counted for every sub): random takes over a few subs and rooms,
 * seeded, with a clock that moves by random steps, exact hour boundaries among them. The limiter
 * keeps a sub's one room without a Map; the answers must be the model's, and a sub whose rooms
 * all aged out is forgotten.
 */
import { describe, expect, it } from 'vitest';
import { NewRoomLimiter } from '../src/limits/new-rooms.js';
import { rng } from './fuzz/relay-inputs.js';

const HOUR_MS = 3_600_000;

/** The rule: a room counted within the hour is admitted again; else at most perHour rooms in the hour. */
class Model {
  private readonly bySub = new Map<string, Map<string, number>>();
  constructor(private readonly perHour: number) {}
  take(sub: string, room: string, now: number): boolean {
    const rooms = this.bySub.get(sub) ?? new Map<string, number>();
    for (const [r, at] of rooms) if (at <= now - HOUR_MS) rooms.delete(r);
    if (rooms.has(room)) return true;
    if (rooms.size >= this.perHour) return false;
    rooms.set(room, now);
    this.bySub.set(sub, rooms);
    return true;
  }
  subs(now: number): number {
    let n = 0;
    for (const rooms of this.bySub.values()) if ([...rooms.values()].some((at) => at > now - HOUR_MS)) n++;
    return n;
  }
}

function run(seed: number, perHour: number, steps: number): void {
  const random = rng(seed);
  let now = 1_700_000_000_000;
  const limiter = new NewRoomLimiter(perHour, () => now);
  const model = new Model(perHour);
  try {
    for (let i = 0; i < steps; i++) {
      const r = random();
      // mostly small steps, sometimes exactly an hour, an hour less or more 1 ms, or half an hour
      if (r < 0.1) now += HOUR_MS;
      else if (r < 0.15) now += HOUR_MS - 1;
      else if (r < 0.2) now += HOUR_MS + 1;
      else if (r < 0.3) now += HOUR_MS / 2;
      else now += Math.floor(random() * 1000);
      const sub = `sub-${Math.floor(random() * 3)}`;
      const room = `room-${Math.floor(random() * 4)}`;
      const step = `seed ${seed} perHour ${perHour} step ${i}: ${sub} ${room} at +${now - 1_700_000_000_000}`;
      expect(limiter.take(sub, room), step).toBe(model.take(sub, room, now));
      // subs are forgotten only when asked about (take), as in the model: count the live ones
      expect(limiter.subCount, step).toBeGreaterThanOrEqual(model.subs(now));
    }
    // an hour later every sub is forgotten once it is asked about again, and takes from zero
    now += HOUR_MS;
    for (let s = 0; s < 3; s++) expect(limiter.take(`sub-${s}`, 'room-9'), `seed ${seed} after an hour`).toBe(perHour >= 1);
    expect(limiter.subCount).toBe(perHour >= 1 ? 3 : 0);
  } finally {
    limiter.stop();
  }
}

describe('NewRoomLimiter', () => {
  it('answers as a sliding hour of rooms per sub, for one room a sub and for several', () => {
    for (let seed = 1; seed <= 40; seed++) for (const perHour of [1, 2, 3]) run(seed, perHour, 300);
  });

  it('admits the room counted an hour less 1 ms ago, and counts it anew at exactly an hour', () => {
    let now = 1_000_000;
    const limiter = new NewRoomLimiter(1, () => now);
    try {
      expect(limiter.take('alice', 'a')).toBe(true);
      now += HOUR_MS - 1;
      expect(limiter.take('alice', 'b')).toBe(false); // 'a' still counts
      expect(limiter.take('alice', 'a')).toBe(true); // counted, not again
      now += 1;
      expect(limiter.take('alice', 'b')).toBe(true); // 'a' aged out at exactly an hour
      expect(limiter.take('alice', 'a')).toBe(false);
    } finally {
      limiter.stop();
    }
  });

  it('keeps the older room of two when the newer one is the one left, and the reverse', () => {
    let now = 0;
    const limiter = new NewRoomLimiter(2, () => now);
    try {
      expect(limiter.take('bob', 'a')).toBe(true);
      now += HOUR_MS / 2;
      expect(limiter.take('bob', 'b')).toBe(true);
      expect(limiter.take('bob', 'c')).toBe(false);
      now += HOUR_MS / 2; // 'a' ages out, 'b' stays (half an hour left)
      expect(limiter.take('bob', 'b')).toBe(true);
      expect(limiter.take('bob', 'c')).toBe(true);
      expect(limiter.take('bob', 'd')).toBe(false);
      now += HOUR_MS / 2; // 'b' ages out, 'c' stays
      expect(limiter.take('bob', 'a')).toBe(true);
      expect(limiter.take('bob', 'd')).toBe(false);
      now += HOUR_MS;
      expect(limiter.take('carol', 'x')).toBe(true);
      expect(limiter.subCount).toBe(2); // bob is forgotten when next asked about
      expect(limiter.take('bob', 'd')).toBe(true);
      expect(limiter.take('bob', 'e')).toBe(true);
      expect(limiter.take('bob', 'f')).toBe(false);
    } finally {
      limiter.stop();
    }
  });
});

/**
 * collections/one-or-set.ts against a model (a real Set): random adds and removes over a few items, seeded,
 * with the holder's shape checked after each step (null when empty, the item alone when one is
 * held, a Set only from two on).
 */
import { describe, expect, it } from 'vitest';
import { countOf, holds, itemsOf, withItem, withoutItem, type OneOrSet } from '../src/collections/one-or-set.js';
import { rng } from './fuzz/relay-inputs.js';

function expectSame<T extends NonNullable<unknown>>(held: OneOrSet<T>, model: Set<T>, universe: readonly T[], step: string): void {
  expect(countOf(held), step).toBe(model.size);
  expect(new Set(itemsOf(held)), step).toEqual(model);
  for (const item of universe) expect(holds(held, item), `${step}: holds ${String(item)}`).toBe(model.has(item));
  if (model.size === 0) expect(held, step).toBeNull();
  else if (model.size === 1) expect(held, step).toBe([...model][0]);
  else expect(held, step).toBeInstanceOf(Set);
}

function run<T extends NonNullable<unknown>>(seed: number, universe: readonly T[], steps: number): void {
  const random = rng(seed);
  const model = new Set<T>();
  let held: OneOrSet<T> = null;
  for (let i = 0; i < steps; i++) {
    const item = universe[Math.floor(random() * universe.length)] as T;
    const add = random() < 0.5;
    if (add) {
      held = withItem(held, item);
      model.add(item);
    } else {
      held = withoutItem(held, item);
      model.delete(item);
    }
    expectSame(held, model, universe, `seed ${seed} step ${i} ${add ? 'add' : 'remove'} ${String(item)}`);
  }
}

describe('one-or-set', () => {
  it('matches a Set for numbers (relay awareness ids), including 0', () => {
    for (let seed = 1; seed <= 50; seed++) run(seed, [0, 1, 2, 3, 4], 200);
  });

  it('matches a Set for strings (signaling topics)', () => {
    for (let seed = 1; seed <= 50; seed++) run(seed, ['', 'a', 'b', 'room-c'], 200);
  });

  it('matches a Set for objects (live sockets)', () => {
    const objects = [{ n: 1 }, { n: 2 }, { n: 3 }];
    for (let seed = 1; seed <= 50; seed++) run(seed, objects, 200);
  });
});

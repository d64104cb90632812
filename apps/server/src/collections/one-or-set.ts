/**
 * A small set kept as what it holds: null when empty, the item itself when it holds one, a Set
 * from the second item on. Most holders hold one item (a signaling connection's one topic, a
 * relay connection's one awareness id, a token's one socket), and a Set of one costs about 150 B
 * (docs/benchmarks.md, memory). Used by auth/live-sockets.ts, relay/room.ts and
 * signaling/connection.ts.
 *
 * Each function takes the holder and returns the new one, which the caller stores; a Set in it is
 * changed in place, not copied. One rule for all: a Set that drops to one item goes back to the
 * item, and an empty holder is null. Keeping the Set once made would save an allocation when the
 * holder grows again, but every holder that ever held two would keep its Set (the per-connection
 * memory targets are what this is for), and growing back costs one Set per return to two items,
 * no more than each add that first made it.
 *
 * Items must not be Sets themselves (a Set holder is told from an item by instanceof), nor NaN
 * (compared with ===; the callers' items are varuint ids, strings and objects).
 */
export type OneOrSet<T extends NonNullable<unknown>> = T | Set<T> | null;

export function holds<T extends NonNullable<unknown>>(held: OneOrSet<T>, item: T): boolean {
  return held === item || (held instanceof Set && held.has(item));
}

export function countOf<T extends NonNullable<unknown>>(held: OneOrSet<T>): number {
  return held === null ? 0 : held instanceof Set ? held.size : 1;
}

/** `held` with `item` added. */
export function withItem<T extends NonNullable<unknown>>(held: OneOrSet<T>, item: T): OneOrSet<T> {
  if (held === null || held === item) return item;
  if (!(held instanceof Set)) return new Set([held, item]);
  held.add(item);
  return held;
}

/** `held` without `item`: the remaining item alone when one is left, null when none. */
export function withoutItem<T extends NonNullable<unknown>>(held: OneOrSet<T>, item: T): OneOrSet<T> {
  if (held === item) return null;
  if (!(held instanceof Set) || !held.delete(item)) return held;
  if (held.size > 1) return held;
  return held.size === 1 ? (held.values().next().value as T) : null;
}

/** The items held (the Set itself when there is one). */
export function itemsOf<T extends NonNullable<unknown>>(held: OneOrSet<T>): Iterable<T> {
  return held === null ? [] : held instanceof Set ? held : [held];
}

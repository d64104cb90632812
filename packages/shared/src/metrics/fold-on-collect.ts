/**
 * Counts kept in plain numbers on a hot path and added to a prom-client counter only when it is
 * read (a scrape, the status sampler, a test): `fold` runs before the counter's own collect hook,
 * if it has one. A labelled inc() per event would hash its labels object each time
 * (apps/server/src/signaling/message-counts.ts, apps/server/src/relay/update-counts.ts).
 */
import type { Counter } from 'prom-client';

type Collect<T extends string> = (this: Counter<T>) => void | Promise<void>;

export function foldOnCollect<T extends string>(counter: Counter<T>, fold: (counter: Counter<T>) => void): void {
  const hooked = counter as unknown as { collect?: Collect<T> };
  const previous = hooked.collect;
  hooked.collect = function (this: Counter<T>) {
    fold(this);
    return previous?.call(this);
  };
}

/**
 * What both storage contract suites (persistence-contract.ts, sealed-store-contract.ts) need
 * around their engine: stores made by the factory are closed after each test; `open` makes and
 * initialises one, `make` one left uninitialised; `room` is a fresh room name.
 * Call inside a describe block.
 */
import { afterEach } from 'vitest';

interface Closable {
  init(): Promise<void>;
  close(): Promise<void>;
}

export function useStores<S extends Closable>(factory: () => S | Promise<S>): { make: () => Promise<S>; open: () => Promise<S>; room: () => string } {
  const stores: S[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  });
  const make = async (): Promise<S> => {
    const s = await factory();
    stores.push(s);
    return s;
  };
  const open = async (): Promise<S> => {
    const s = await make();
    await s.init();
    return s;
  };
  const room = (): string => `acme-conversation-${Math.random().toString(36).slice(2)}`;
  return { make, open, room };
}

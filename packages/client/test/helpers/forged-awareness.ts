/**
 * Awareness updates as a hostile member writes them, for the guard (src/awareness-guard.ts) on
 * both paths: relay (relay-awareness-guard.test.ts) and sealed (sealed-hostile-server.test.ts).
 */
import { expect } from 'vitest';
import * as encoding from 'lib0/encoding';
import type { Awareness } from 'y-protocols/awareness';
import { until } from './until.js';

export type AwarenessEntry = [client: number, clock: number, state: unknown];

/** A y-protocols awareness update: the count, then client id, clock and JSON state of each entry. */
export function awarenessUpdate(entries: AwarenessEntry[]): Uint8Array {
  return encoding.encode((e) => {
    encoding.writeVarUint(e, entries.length);
    for (const [client, clock, state] of entries) {
      encoding.writeVarUint(e, client);
      encoding.writeVarUint(e, clock);
      encoding.writeVarString(e, JSON.stringify(state));
    }
  });
}

/** One update: this device (`own`) at the top clock, another client at it, and a genuine one (777). */
export function forgedClaims(own: number): AwarenessEntry[] {
  return [
    [own, Number.MAX_SAFE_INTEGER, { user: 'eve was here' }],
    [4242, Number.MAX_SAFE_INTEGER, { user: 'frozen' }],
    [777, 3, { user: 'bob' }],
  ];
}

/** Once the genuine entry of forgedClaims is applied: this device ('alice') kept its state and its clock (`before`), 4242 is not there. */
export async function expectForgedClaimsDropped(awareness: Awareness, before: number): Promise<void> {
  await until(async () => awareness.getStates().get(777)?.['user'] === 'bob', 'the genuine entry applied');
  expect(awareness.getLocalState()).toEqual({ user: 'alice' });
  expect(awareness.meta.get(awareness.clientID)?.clock ?? -1).toBe(before);
  expect(awareness.getStates().has(4242)).toBe(false);
}

/**
 * heard-clients.ts reads a removal as y-protocols does: a state whose JSON is `null`, JSON
 * whitespace around it allowed (JSON.parse), not only the four bytes `null`.
 */
import { describe, expect, it } from 'vitest';
import { encodeAwarenessEntries } from '@sync-suite/shared';
import { HeardClients, withoutRemovals } from '../src/heard-clients.js';

const update = (entries: Array<[number, string]>): Uint8Array => encodeAwarenessEntries(entries.map(([clientID, json]) => ({ clientID, clock: 1, json })));

describe('HeardClients', () => {
  it('a removal padded with JSON whitespace drops the client, as y-protocols applies it', () => {
    const heard = new HeardClients();
    heard.noteUpdate(update([[1, '{"a":1}'], [2, '{}']]));
    expect(heard.clients.sort()).toEqual([1, 2]);
    expect(JSON.parse(' \n null\t')).toBeNull();
    heard.noteUpdate(update([[1, ' \n null\t'], [2, 'null']]));
    expect(heard.clients).toEqual([]);
  });

  it('withoutRemovals drops a padded removal of a client to keep, and keeps a state that is not null', () => {
    const out = withoutRemovals(update([[1, ' null '], [2, '"null"']]), () => true);
    expect(out).toEqual(update([[2, '"null"']]));
    expect(withoutRemovals(update([[2, '"null"']]), () => true)).toBeUndefined();
  });
});

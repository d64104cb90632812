import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { checkUpdateCost, UpdateRefused } from '../src/relay/update-check.js';
import { DEFAULT_UPDATE_LIMITS } from '../src/relay/update-limits.js';

/** The update a change to a fresh document makes. */
function updateOf(change: (doc: Y.Doc) => void, clientID = 7): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = clientID;
  let out: Uint8Array = new Uint8Array();
  doc.once('update', (u: Uint8Array) => (out = u));
  change(doc);
  return out;
}

/** The update with the first byte of `text`'s UTF-8 encoding replaced by 0xff (invalid UTF-8). */
function corrupted(update: Uint8Array, text: string): Uint8Array {
  const needle = Buffer.from(text);
  const at = Buffer.from(update).indexOf(needle);
  expect(at).toBeGreaterThanOrEqual(0);
  const out = update.slice();
  out[at] = 0xff;
  return out;
}

const refusal = (update: Uint8Array): string | null => {
  try {
    checkUpdateCost(new Y.Doc(), update, DEFAULT_UPDATE_LIMITS);
    return null;
  } catch (err) {
    if (err instanceof UpdateRefused) return err.limit;
    throw err;
  }
};

// Short strings are checked byte by byte, long ones (over 32 bytes) by node's isAscii; both only
// skip decoding when every byte is ASCII.
const short = 'q'.repeat(8);
const long = 'q'.repeat(200);

describe('update reader: strings checked without decoding when ASCII', () => {
  for (const [name, text] of [['short', short], ['long', long]] as const) {
    it(`${name} text: length in clock units as Yjs counts them; invalid UTF-8 refused`, () => {
      for (const t of [text, `${text}é€😀`]) {
        const u = updateOf((d) => d.getText('t').insert(0, t));
        const cost = checkUpdateCost(new Y.Doc(), u, DEFAULT_UPDATE_LIMITS);
        expect(cost.ends.get(7)).toBe(t.length);
      }
      expect(refusal(corrupted(updateOf((d) => d.getText('t').insert(0, text)), text))).toBe('malformed');
    });

    it(`${name} map key and value string: valid accepted, invalid UTF-8 refused`, () => {
      expect(refusal(updateOf((d) => d.getMap('m').set(text, 'v')))).toBeNull();
      expect(refusal(updateOf((d) => d.getMap('m').set('k', text)))).toBeNull();
      expect(refusal(corrupted(updateOf((d) => d.getMap('m').set(text, 'v')), text))).toBe('malformed');
      expect(refusal(corrupted(updateOf((d) => d.getMap('m').set('k', text)), text))).toBe('malformed');
    });
  }

  it('content bytes count ASCII strings as before: a string over RELAY_MAX_UPDATE_CONTENT_BYTES is refused', () => {
    const big = 'q'.repeat(DEFAULT_UPDATE_LIMITS.maxContentBytes + 1);
    expect(refusal(updateOf((d) => d.getText('t').insert(0, big)))).toBe('content_bytes');
  });
});

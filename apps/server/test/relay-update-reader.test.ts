import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
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

describe('update reader: sub-document options Yjs cannot take', () => {
  /** A sub-document item at the root array `a`, options written as `writeOptions` writes them. */
  const subdoc = (writeOptions: (e: encoding.Encoder) => void): Uint8Array => {
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 1); // one client
    encoding.writeVarUint(e, 1); // one struct
    encoding.writeVarUint(e, 9); // client
    encoding.writeVarUint(e, 0); // clock
    encoding.writeUint8(e, 9); // ContentDoc, no origins, parent by root name
    encoding.writeVarUint(e, 1);
    encoding.writeVarString(e, 'a');
    encoding.writeVarString(e, 'guid-1');
    writeOptions(e);
    encoding.writeVarUint(e, 0); // empty delete set
    return encoding.toUint8Array(e);
  };
  const any = (value: unknown) => (e: encoding.Encoder): void => encoding.writeAny(e, value as never);
  /** lib0's writeAny of an object with these entries, one per key, in order (keys writeAny would refuse or reorder) */
  const entries = (...kv: Array<[string, unknown]>) => (e: encoding.Encoder): void => {
    encoding.writeUint8(e, 118);
    encoding.writeVarUint(e, kv.length);
    for (const [k, v] of kv) {
      encoding.writeVarString(e, k);
      encoding.writeAny(e, v as never);
    }
  };
  const appliesInYjs = (u: Uint8Array): boolean => {
    try {
      const doc = new Y.Doc();
      Y.applyUpdate(doc, u);
      Y.encodeStateAsUpdate(doc);
      return true;
    } catch {
      return false;
    }
  };

  it('numbers past 2^53 - 1 (client, clock, a struct or deletion ending past it) are refused as malformed', () => {
    const TWO_POW_53 = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
    const MAX = Number.MAX_SAFE_INTEGER;
    /** sections, then the delete set, written by hand (numbers as varUints, arrays as raw bytes) */
    const raw = (parts: Array<number | number[] | string>): Uint8Array =>
      encoding.encode((e) => {
        for (const p of parts) {
          if (typeof p === 'number') encoding.writeVarUint(e, p);
          else if (typeof p === 'string') encoding.writeVarString(e, p);
          else encoding.writeUint8Array(e, Uint8Array.from(p));
        }
      });
    const STRING = 4;
    expect(refusal(raw([1, 1, 5, 0, STRING, 1, 'x', 'a', 0]))).toBeNull();
    expect(refusal(raw([1, 1, 5, MAX - 1, STRING, 1, 'x', 'a', 0]))).toBeNull();
    for (const bad of [
      raw([1, 1, TWO_POW_53, 0, STRING, 1, 'x', 'a', 0]), // client 2^53
      raw([1, 1, 5, TWO_POW_53, STRING, 1, 'x', 'a', 0]), // clock 2^53
      raw([1, 1, 5, MAX, STRING, 1, 'x', 'a', 0]), // a string ending past it
      raw([0, 1, 5, 1, MAX, 1]), // a deletion ending past it
      raw([0, 1, 5, 1, 0, TWO_POW_53]), // a deletion of length 2^53
    ]) {
      expect(refusal(bad)).toBe('malformed');
    }
  });

  it('what Yjs writes is accepted', () => {
    const sub = new Y.Doc({ autoLoad: true, gc: false, meta: { title: 't' } });
    const u = updateOf((d) => d.getArray('a').push([sub, new Y.Doc()]));
    expect(refusal(u)).toBeNull();
    expect(refusal(subdoc(entries(['guid', 'g2'], ['collectionid', 'c'], ['shouldLoad', true], ['other', [1, { x: null }]])))).toBeNull();
  });

  it('options that are not an object, a guid that is not a string, gcFilter and __proto__ are refused (malformed)', () => {
    const hostile: Array<[string, (e: encoding.Encoder) => void]> = [
      ['null', any(null)],
      ['undefined', (e) => encoding.writeUint8(e, 127)],
      ['a number', any(5)],
      ['a string', any('x')],
      ['an array', any([{}])],
      ['bytes', any(new Uint8Array(2))],
      ['guid null', entries(['guid', null])],
      ['guid a number', entries(['gc', true], ['guid', 5])],
      ['gcFilter', entries(['gcFilter', true])],
      ['__proto__', entries(['__proto__', { shouldLoad: true }])],
    ];
    for (const [name, write] of hostile) expect(refusal(subdoc(write)), name).toBe('malformed');
    // The two that throw in Yjs itself (on apply; on encoding the document).
    expect(appliesInYjs(subdoc(any(null)))).toBe(false);
    expect(appliesInYjs(subdoc(entries(['guid', null])))).toBe(false);
  });

  it('values inside the options count toward the value depth as anywhere else', () => {
    const nested = (levels: number): unknown => (levels === 0 ? 1 : { n: nested(levels - 1) });
    const max = DEFAULT_UPDATE_LIMITS.maxValueDepth;
    // The options object is one level: `meta` may open max - 1 more.
    expect(refusal(subdoc(entries(['meta', nested(max - 2)])))).toBeNull();
    expect(refusal(subdoc(entries(['meta', nested(max - 1)])))).toBe('value_depth');
    expect(refusal(subdoc(any(nested(max))))).toBe('value_depth');
  });
});

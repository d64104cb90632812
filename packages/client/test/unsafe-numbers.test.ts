/**
 * Numbers lib0 reads past 2^53 - 1 in what another device sends (src/update-screen.ts,
 * src/awareness-guard.ts): Yjs and y-protocols would keep them and encode them again, and lib0's
 * writeVarUint(Infinity) never ends. Nothing here encodes a document holding one: with the screen
 * removed these fail rather than hang.
 */
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import { Awareness } from 'y-protocols/awareness';
import { screenAwarenessUpdate } from '../src/awareness-guard.js';
import { syncMessageRefusal, updateRefusal } from '../src/update-screen.js';
import { INFINITY_VARUINT, TWO_POW_53_VARUINT, awarenessWithClient, updateWithClient } from './helpers/unsafe-numbers.js';

const NAN_VARUINT = Uint8Array.from([...(new Array(147).fill(0x80) as number[]), 0x00]);
/** nine bytes for 0: no encoder writes it, lib0 reads 0; refused as the server's reader does */
const LONG_ZERO = Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
const MAX = Number.MAX_SAFE_INTEGER;

/** A v1 update written by hand: `body` (raw bytes and numbers) between the section count and the delete set. */
function raw(parts: Array<number | Uint8Array | string>): Uint8Array {
  return encoding.encode((e) => {
    for (const p of parts) {
      if (typeof p === 'number') encoding.writeVarUint(e, p);
      else if (typeof p === 'string') encoding.writeVarString(e, p);
      else encoding.writeUint8Array(e, p);
    }
  });
}
const STRING = 4;
/** one section of one string item 'a' in root type 'x', at `clock` of `client` */
const item = (client: number | Uint8Array, clock: number | Uint8Array): Array<number | Uint8Array | string> => [1, 1, client, clock, STRING, 1, 'x', 'a'];

describe('updateRefusal', () => {
  it('takes real updates of every kind of content, merged, with deletions', () => {
    const doc = new Y.Doc();
    const text = doc.getText('t');
    text.insert(0, 'héllo wörld 第一 😀');
    text.format(0, 2, { bold: true });
    text.insertEmbed(1, { img: 'x' });
    text.delete(3, 2);
    const map = doc.getMap('m');
    map.set('any', { a: [1, -2, 2.5, 1e300, 'x', null, true, false, undefined, { b: new Uint8Array([1, 2]), c: [[[]], {}] }], big: 2n ** 60n });
    map.set('sub', new Y.Doc());
    doc.getArray('a').insert(0, [new Y.Map(), new Y.Text('t'), new Uint8Array([5]), new Y.XmlElement('p'), new Y.XmlFragment(), new Y.XmlText('x')]);
    doc.getArray('a').delete(0, 2);
    const other = new Y.Doc();
    other.getText('t').insert(0, 'other');
    const merged = Y.mergeUpdates([Y.encodeStateAsUpdate(doc), Y.encodeStateAsUpdate(other)]);
    for (const u of [Y.encodeStateAsUpdate(doc), merged, Y.encodeStateAsUpdate(new Y.Doc())]) expect(updateRefusal(u)).toBeUndefined();
    expect(updateRefusal(raw([...item(MAX - 1, 0), 0]))).toBeUndefined();
    expect(updateRefusal(raw([...item(1, MAX - 1), 0]))).toBeUndefined();
  });

  it('refuses any id, clock or length past 2^53 - 1, and a range ending past it', () => {
    const refused: Array<[string, Uint8Array]> = [
      ['client Infinity (a real update)', updateWithClient(INFINITY_VARUINT)],
      ['client 2^53 (a real update)', updateWithClient(TWO_POW_53_VARUINT)],
      ['client NaN', raw([...item(NAN_VARUINT, 0), 0])],
      ['a nine-byte zero', raw([...item(LONG_ZERO, 0), 0])],
      ['clock Infinity', raw([...item(1, INFINITY_VARUINT), 0])],
      ['a string ending past 2^53 - 1', raw([...item(1, MAX), 0])],
      ['origin client Infinity', raw([1, 1, 1, 1, Uint8Array.from([0x80 | STRING]), INFINITY_VARUINT, 0, 'a', 0])],
      ['origin clock 2^53', raw([1, 1, 1, 1, Uint8Array.from([0x80 | STRING]), 2, TWO_POW_53_VARUINT, 'a', 0])],
      ['right origin client Infinity', raw([1, 1, 1, 1, 0x40 | STRING, INFINITY_VARUINT, 0, 'a', 0])],
      ['parent client Infinity', raw([1, 1, 1, 0, STRING, 0, INFINITY_VARUINT, 0, 'a', 0])],
      ['GC length Infinity', raw([1, 1, 1, 0, 0, INFINITY_VARUINT, 0])],
      ['GC ending past 2^53 - 1', raw([1, 2, 1, 0, 0, MAX, 0, 1, 0])],
      ['deleted content of length 2^53', raw([1, 1, 1, 0, 1, 1, 'x', TWO_POW_53_VARUINT, 0])],
      ['delete-set client Infinity', raw([0, 1, INFINITY_VARUINT, 1, 0, 1])],
      ['delete-set clock Infinity', raw([0, 1, 1, 1, INFINITY_VARUINT, 1])],
      ['delete-set length 2^53', raw([0, 1, 1, 1, 0, TWO_POW_53_VARUINT])],
      ['deletion ending past 2^53 - 1', raw([0, 1, 1, 1, MAX, 1])],
      ['cut short', updateWithClient(INFINITY_VARUINT).subarray(0, 20)],
    ];
    for (const [what, u] of refused) expect(updateRefusal(u), what).toMatch(/2\^53 - 1|ends early/);
  });

  it('refuses what makes Yjs throw in its transaction cleanup and stop emitting updates: an empty item, an empty deletion, a reference to the item itself', () => {
    const refused: Array<[string, Uint8Array]> = [
      ['an empty Deleted item', raw([1, 1, 1, 0, 1, 1, 'x', 0, 0])],
      ['an empty string item', raw([1, 1, 1, 0, STRING, 1, 'x', '', 0])],
      ['an empty deletion', raw([0, 1, 1, 1, 0, 0])],
      ['an origin at the item itself', raw([1, 1, 1, 1, Uint8Array.from([0x80 | STRING]), 1, 1, 'a', 0])],
      ['a parent at a later item of its client', raw([1, 1, 1, 0, STRING, 0, 1, 3, 'a', 0])],
    ];
    for (const [what, u] of refused) expect(updateRefusal(u), what).toMatch(/an empty|refers to itself/);
    // what the Deleted one does to a document the screen would let it reach
    const doc = new Y.Doc();
    let updates = 0;
    doc.on('update', () => updates++);
    expect(() => Y.applyUpdate(doc, refused[0]?.[1] as Uint8Array)).toThrow();
    doc.getText('t').insert(0, 'typed after it');
    expect(updates).toBe(0);
    doc.destroy();
  });

  it('screens sync step 2 and update messages only (step 1 state vectors are only compared by Yjs)', () => {
    const bad = updateWithClient(INFINITY_VARUINT);
    const message = (kind: number, payload: Uint8Array): Uint8Array => raw([0, kind, payload.length, payload]);
    expect(syncMessageRefusal(message(1, bad))).toMatch(/2\^53 - 1/);
    expect(syncMessageRefusal(message(2, bad))).toMatch(/2\^53 - 1/);
    expect(syncMessageRefusal(message(0, raw([1, INFINITY_VARUINT, 0])))).toBeUndefined();
    expect(syncMessageRefusal(raw([1, bad.length, bad]))).toBeUndefined(); // awareness: its own screen
    expect(syncMessageRefusal(message(2, Y.encodeStateAsUpdate(new Y.Doc())))).toBeUndefined();
  });
});

describe('awareness entries', () => {
  for (const strict of [true, false]) {
    it(`an entry whose clientID is not a safe integer, or whose clock is not a number, is dropped (${strict ? 'strict' : 'lenient'})`, () => {
      const awareness = new Awareness(new Y.Doc());
      for (const id of [INFINITY_VARUINT, TWO_POW_53_VARUINT]) {
        const screened = screenAwarenessUpdate(awarenessWithClient(id, 1, { user: 'eve' }), awareness, strict);
        expect(screened.update).toEqual(raw([0]));
      }
      const nanClock = raw([1, 5, NAN_VARUINT, JSON.stringify({ user: 'eve' })]);
      expect(screenAwarenessUpdate(nanClock, awareness, strict).update).toEqual(raw([0]));
      const ownNan = raw([1, awareness.clientID, NAN_VARUINT, JSON.stringify({ user: 'eve' })]);
      expect(screenAwarenessUpdate(ownNan, awareness, strict).ownClaim).toBeUndefined();
      awareness.destroy();
    });
  }
});

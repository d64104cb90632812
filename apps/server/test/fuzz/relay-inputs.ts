/**
 * Seeded, structure-aware inputs for the /relay endpoint: valid Yjs updates from a scratch
 * document, near-valid ones (truncated, mutated), updates built to expand (hostile-updates.ts)
 * with random sizes around the limits, presence messages (large, foreign ids, removals, broken),
 * and other protocol frames. Same seed, same inputs.
 */
import * as Y from 'yjs';
import {
  encodeAwarenessEntries,
  encodeRelayMessage,
  writeRelayAwareness,
  writeRelayQueryAwareness,
  writeRelaySyncStep1,
  writeRelaySyncStep2,
  writeRelayUpdate,
} from '@sync-suite/shared';
import { deepAnyItem, deepNesting, deleteSetOfStrangers, hugeMap, jsonItem, manySubdocs, nestingStep, stringItem, updateOf } from '../hostile-updates.js';

export interface FuzzInput {
  kind: string;
  frame: Uint8Array;
  /** could change a document if accepted: sent to scratch rooms only */
  mutates: boolean;
}

/** mulberry32 */
export function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** inputs per epoch: scratch documents (here) and scratch rooms (relay-fuzz-run.ts) start afresh */
export const EPOCH = 5000;

const update = (u: Uint8Array) => encodeRelayMessage((e) => writeRelayUpdate(e, u));

export class RelayInputs {
  private readonly r: () => number;
  private readonly docs: Y.Doc[] = [];
  private readonly recent: Uint8Array[] = [];
  private nextClient = 10_000;
  private count = 0;

  constructor(
    seed: number,
    /** client ids of honest members, for foreign-id presence messages */
    private readonly honestIds: () => number[],
  ) {
    this.r = rng(seed);
    this.renew();
  }

  destroy(): void {
    for (const doc of this.docs) doc.destroy();
  }

  private renew(): void {
    for (const doc of this.docs.splice(0)) doc.destroy();
    this.recent.length = 0;
    for (let i = 0; i < 3; i++) {
      const doc = new Y.Doc();
      doc.on('update', (u: Uint8Array) => this.remember(u));
      this.docs.push(doc);
    }
  }

  next(): FuzzInput {
    // Fresh scratch documents now and then: long runs stay linear (rooms rotate in the runner too).
    if (++this.count % EPOCH === 0) this.renew();
    const p = this.r();
    if (p < 0.25) return { kind: 'valid_update', frame: update(this.validUpdate()), mutates: true };
    if (p < 0.28) return { kind: 'full_step2', frame: encodeRelayMessage((e) => writeRelaySyncStep2(e, Y.encodeStateAsUpdate(this.pick(this.docs)))), mutates: true };
    if (p < 0.38) return { kind: 'truncated_update', frame: update(this.truncated()), mutates: true };
    if (p < 0.48) return { kind: 'mutated_update', frame: update(this.mutated()), mutates: true };
    if (p < 0.55) return this.hostile();
    if (p < 0.7) return { kind: 'awareness', frame: this.awareness(), mutates: false };
    if (p < 0.75) return { kind: 'step1', frame: this.step1(), mutates: false };
    if (p < 0.8) return { kind: 'query', frame: encodeRelayMessage((e) => writeRelayQueryAwareness(e)), mutates: false };
    if (p < 0.85) return { kind: 'other_type', frame: Uint8Array.from([2 + this.int(8), ...this.bytes(this.int(20))]), mutates: false };
    if (p < 0.92) return { kind: 'random_bytes', frame: this.bytes(1 + this.int(100)), mutates: false };
    return { kind: 'sync_header_random', frame: Uint8Array.from([0, this.int(4), ...this.bytes(this.int(60))]), mutates: false };
  }

  private int(n: number): number {
    return Math.floor(this.r() * n);
  }

  private pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)] as T;
  }

  private bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }

  private remember(u: Uint8Array): void {
    this.recent.push(u);
    if (this.recent.length > 50) this.recent.shift();
  }

  /** One random edit on a scratch document; its update. */
  private validUpdate(): Uint8Array {
    const doc = this.pick(this.docs);
    const before = this.recent.length;
    const op = this.int(8);
    const text = doc.getText('text');
    const list = doc.getArray<unknown>('list');
    const map = doc.getMap<unknown>('map');
    const word = 'ab😀cdé'.slice(0, 1 + this.int(6));
    if (op === 0) text.insert(this.int(text.length + 1), word, this.r() < 0.3 ? { bold: true, link: { href: 'x' } } : undefined);
    else if (op === 1 && text.length > 0) text.delete(this.int(text.length), 1 + this.int(3));
    else if (op === 2) map.set(`k${this.int(20)}`, this.r() < 0.5 ? { n: this.int(1000), s: word, a: [1, [2, null]] } : new Uint8Array(this.bytes(8)));
    else if (op === 3) list.insert(this.int(list.length + 1), [new Y.Map([['m', word]])]);
    else if (op === 4 && list.length > 0) list.delete(this.int(list.length), 1);
    else if (op === 5) doc.getXmlFragment('xml').insert(0, [new Y.XmlElement('p'), new Y.XmlText(word)]);
    else if (op === 6) {
      const inner = map.get('nest');
      if (inner instanceof Y.Map) inner.set(`i${this.int(5)}`, new Y.Array());
      else map.set('nest', new Y.Map());
    } else text.insert(0, word);
    return this.recent.length > before ? (this.recent.at(-1) as Uint8Array) : Y.encodeStateAsUpdate(doc);
  }

  private truncated(): Uint8Array {
    const base = this.recent.length > 0 ? this.pick(this.recent) : this.validUpdate();
    return base.slice(0, this.int(base.length));
  }

  private mutated(): Uint8Array {
    const base = (this.recent.length > 0 ? this.pick(this.recent) : this.validUpdate()).slice();
    for (let k = 0; k < 1 + this.int(4); k++) base[this.int(base.length)] = this.pick([0, 1, 0x7f, 0x80, 0xff, this.int(256)]);
    return base;
  }

  /** Updates that expand, with sizes around (mostly below, sometimes far above) the limits. */
  private hostile(): FuzzInput {
    const client = this.nextClient++;
    const big = this.r() < 0.02; // now and then far above the limits
    const k = this.int(9);
    const kinds = ['deep_nesting', 'nesting_step', 'delete_strangers', 'huge_map', 'subdocs', 'deep_value', 'deep_json', 'long_key', 'bad_utf8'];
    let u: Uint8Array;
    switch (k) {
      case 0: u = deepNesting(client, big ? 20_000 : 1 + this.int(100)); break;
      case 1: u = nestingStep(client, this.int(80)); break;
      case 2: u = deleteSetOfStrangers(big ? 30_000 : 1 + this.int(200), 1_000_000 + this.int(1e6)); break;
      case 3: u = hugeMap(client, big ? 260_000 : 1 + this.int(2000)); break;
      case 4: u = manySubdocs(client, big ? 1500 : 1 + this.int(20)); break;
      case 5: u = updateOf(client, 0, [deepAnyItem({ root: 'map' }, big ? 100_000 : 1 + this.int(60), 'v')]); break;
      case 6: {
        const d = big ? 100_000 : 1 + this.int(60);
        u = updateOf(client, 0, [jsonItem({ root: 'map' }, '['.repeat(d) + ']'.repeat(d), 'j')]);
        break;
      }
      case 7: u = updateOf(client, 0, [stringItem({ root: 'map' }, 'v', 'k'.repeat(big ? 1_000_000 : 1 + this.int(6000)))]); break;
      default: {
        u = updateOf(client, 0, [stringItem({ root: 'text' }, 'abcd')]);
        u[u.length - 3] = 0xff; // inside the string: invalid UTF-8
      }
    }
    return { kind: `hostile_${kinds[k]}`, frame: this.r() < 0.2 ? encodeRelayMessage((e) => writeRelaySyncStep2(e, u)) : update(u), mutates: true };
  }

  private awareness(): Uint8Array {
    const n = 1 + this.int(this.r() < 0.1 ? 20 : 3);
    const ids = this.honestIds();
    const entries = Array.from({ length: n }, () => {
      const foreign = ids.length > 0 && this.r() < 0.3;
      const clientID = foreign ? this.pick(ids) : this.int(50);
      const size = this.r() < 0.1 ? 15_000 + this.int(3_000) : this.int(200);
      const depth = this.r() < 0.05 ? 10 + this.int(60) : 1;
      const state: unknown = this.r() < 0.25 ? null : { user: 'x'.repeat(size), deep: JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown };
      return { clientID, clock: this.int(5000), json: JSON.stringify(state) };
    });
    let body = encodeAwarenessEntries(entries);
    if (this.r() < 0.15) body = body.slice(0, this.int(body.length));
    else if (this.r() < 0.1) body = Uint8Array.from([1, this.int(100), 1, 3, 0x7b, 0x7b, 0x7b]); // broken JSON
    return encodeRelayMessage((e) => writeRelayAwareness(e, body));
  }

  private step1(): Uint8Array {
    const sv = this.r() < 0.5 ? Y.encodeStateVector(this.pick(this.docs)) : this.bytes(this.int(30));
    return encodeRelayMessage((e) => writeRelaySyncStep1(e, sv));
  }
}

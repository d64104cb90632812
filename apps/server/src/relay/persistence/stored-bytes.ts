/**
 * A room's stored state served as bytes, before (and without) a Y.Doc: on a cold load the
 * snapshot and the log after it are checked entry by entry (the bounded reader, then the nesting
 * depth of everything together) and merged byte for byte into one update, so the first sync
 * step 2 carries the whole content a few milliseconds after storage answered. Decoding the state
 * into a document costs far more and happens later (relay/room.ts).
 *
 * The merge copies each struct's bytes (a v1 struct is self-contained: its origins are full
 * ids), orders them by client and clock, drops the ones another entry already holds and marks
 * gaps with Skip structs; delete sets are united. Whatever it cannot do without re-encoding (a
 * struct that only partly overlaps another, or a client's state that ends inside a struct) makes
 * it give up: the caller then takes the Y.Doc path (merge.ts) or Yjs's own diff.
 */
import * as Y from 'yjs';
import { checkDepth, UpdateRefused } from '../update-check.js';
import { UpdateReader, type ItemRef, type UpdateLayout } from '../update-reader.js';
import { DEFAULT_UPDATE_LIMITS, type UpdateLimits } from '../update-limits.js';
import { storedEntryLimits, type Quarantined } from './merge.js';
import { readStamp, type SnapshotStamp } from './snapshot-stamp.js';
import type { StoredContent } from './types.js';
import { readVarUint, type ByteCursor } from '../varuint.js';

interface Part {
  update: Uint8Array;
  layout: UpdateLayout;
}

/** A room's stored state, checked and merged, waiting to be decoded into its document. */
export interface ColdState {
  /** what was read from storage (the document is built from it later) */
  stored: StoredContent;
  /** every entry that passed the checks, merged into one v1 update */
  update: Uint8Array;
  /** entries set aside by the checks, by index (-1: the snapshot), with the limit passed */
  skip: Map<number, string>;
  quarantined: Quarantined[];
  parts: Part[];
  /** the snapshot was taken on its stamp (snapshot-stamp.ts) instead of being read and checked */
  stamped: boolean;
}

/**
 * Checks and merges the stored state. Null when there is nothing stored, or when the state needs
 * the Y.Doc path: the entries together nest types too deep (which entry to set aside is decided
 * there), or they overlap in a way the byte merge does not handle.
 *
 * A snapshot with an intact stamp is not read again: its layout and the depth of its types come
 * from the stamp, and the log entries after it are checked as always, the ids they refer to in
 * the snapshot taken at its deepest level (an upper bound: should that pass the limit, the whole
 * state is checked entry by entry as without a stamp).
 */
export function prepareColdState(stored: StoredContent, limits: UpdateLimits): ColdState | null {
  const stamp = stored.snapshot && stored.snapshotStamp ? readStamp(stored.snapshot, stored.snapshotStamp, limits) : null;
  if (stamp && (stamp.closed || stored.updates.length === 0)) {
    const cold = prepare(stored, limits, stamp);
    if (cold !== DEPTH) return cold;
  }
  const cold = prepare(stored, limits, null);
  return cold === DEPTH ? null : cold;
}

/** The entries together nest types too deep */
const DEPTH = Symbol('depth');

function prepare(stored: StoredContent, limits: UpdateLimits, stamp: SnapshotStamp | null): ColdState | null | typeof DEPTH {
  const entries: Array<[number, Uint8Array]> = stored.updates.map((u, i) => [i, u]);
  const parts: Part[] = [];
  if (stamp && stored.snapshot) parts.push({ update: stored.snapshot, layout: stamp.layout });
  else if (stored.snapshot) entries.unshift([-1, stored.snapshot]);
  if (entries.length === 0 && parts.length === 0) return null;
  const skip = new Map<number, string>();
  const quarantined: Quarantined[] = [];
  let items: ItemRef[] = [];
  let maxDepth = limits.maxDepth;
  for (const [index, update] of entries) {
    const layout: UpdateLayout = { sections: [], deleteSetAt: 0 };
    const entryLimits = storedEntryLimits(limits, index === -1);
    maxDepth = entryLimits.maxDepth;
    try {
      const cost = new UpdateReader(update, entryLimits, undefined, layout).read();
      if (items.length === 0) items = cost.items;
      else for (const item of cost.items) items.push(item);
    } catch (err) {
      if (!(err instanceof UpdateRefused)) throw err;
      skip.set(index, err.limit);
      quarantined.push({ index, update, reason: err.limit });
      continue;
    }
    parts.push({ update, layout });
  }
  if (parts.length === 0) return null;
  if (items.length > 0) {
    try {
      checkDepth(new Y.Doc(), items, maxDepth, stamp ? () => stamp.level : undefined);
    } catch (err) {
      if (err instanceof UpdateRefused) return DEPTH;
      throw err;
    }
  }
  // A stamped snapshot alone is served as stored: it is a Yjs encoding that passed the checks.
  const update = stamp && parts.length === 1 ? (parts[0] as Part).update : mergeParts(parts);
  if (!update) return null;
  return { stored, update, skip, quarantined, parts, stamped: stamp !== null };
}

/** What a client with this state vector lacks, from the cold state (Yjs's diff when the byte merge cannot). */
export function coldDiff(cold: ColdState, stateVector: Uint8Array): Uint8Array {
  const sv = Y.decodeStateVector(stateVector);
  if (sv.size === 0) return cold.update;
  return mergeParts(cold.parts, sv) ?? Y.diffUpdate(cold.update, stateVector);
}

/**
 * The parts merged into one v1 update, without what `known` (a state vector) covers. Null when a
 * struct partly overlaps another or straddles the known state (that needs re-encoding).
 */
export function mergeParts(parts: readonly Part[], known?: Map<number, number>): Uint8Array | null {
  // Whole client sections first (a snapshot's and a log's usually follow one another), struct by
  // struct only when sections overlap or the known state ends inside one.
  return mergeRecords(parts, known, true) ?? mergeRecords(parts.map(withStructs), known, false);
}

/** The part with where each struct lies (read again, once: every entry passed the checks already). */
function withStructs(part: Part): Part {
  if (!part.layout.structs) {
    const layout: UpdateLayout = { structs: [], sections: [], deleteSetAt: 0 };
    new UpdateReader(part.update, OPEN_LIMITS, undefined, layout).read();
    part.layout.structs = layout.structs;
  }
  return part;
}

const OPEN_LIMITS: UpdateLimits = {
  ...DEFAULT_UPDATE_LIMITS,
  maxStructs: Infinity,
  maxDeleteRanges: Infinity,
  maxDeleteClients: Infinity,
  maxSubdocs: Infinity,
  maxContentBytes: Infinity,
  maxPendingBytes: Infinity,
  maxPendingDeleteBytes: Infinity,
  maxDepth: Infinity,
  maxValueDepth: Infinity,
  maxKeyBytes: Infinity,
};

/** Per record: part, clock, length in clock units, first byte, byte after it, structs in it, Skip structs among them. */
const R = 7;

function mergeRecords(parts: readonly Part[], known: Map<number, number> | undefined, sections: boolean): Uint8Array | null {
  const byClient = new Map<number, number[]>();
  let bytes = 0;
  let records = 0;
  for (let p = 0; p < parts.length; p++) {
    const layout = (parts[p] as Part).layout;
    const s = (sections ? layout.sections : layout.structs) ?? [];
    const stride = sections ? 7 : 5;
    for (let i = 0; i < s.length; i += stride) {
      const client = s[i] as number;
      let list = byClient.get(client);
      if (!list) byClient.set(client, (list = []));
      list.push(p, s[i + 1] as number, s[i + 2] as number, s[i + 3] as number, s[i + 4] as number, sections ? (s[i + 5] as number) : 1, sections ? (s[i + 6] as number) : 0);
      bytes += (s[i + 4] as number) - (s[i + 3] as number);
      records++;
    }
  }
  const out = new Writer(bytes + records * 11 + byClient.size * 30 + 10 + deleteSetBound(parts));
  const merged: Array<{ client: number; kept: number[]; count: number }> = [];
  for (const [client, list] of byClient) {
    const order = Array.from({ length: list.length / R }, (_, i) => i * R);
    if (!sortedByClock(list, order)) {
      // Stored order on equal clocks: Yjs keeps what it applied first and takes of a later, longer
      // entry only the clocks past it, which the loop below cannot cut out (it gives up). Longer
      // first served a writer's second, longer insert at the same id whole: cold clients saw
      // other content than the room's document, for good.
      order.sort((a, b) => (list[a + 1] as number) - (list[b + 1] as number) || a - b);
    }
    const from = known?.get(client) ?? 0;
    // [gap, part, first byte, byte after, clock] (gap > 0: a Skip struct of that length goes first)
    const kept: number[] = [];
    let count = 0;
    let end = -1;
    // whether what was kept so far has no Skip structs (then it holds every clock up to `end`)
    let solid = true;
    for (const i of order) {
      const clock = list[i + 1] as number;
      const length = list[i + 2] as number;
      if (clock + length <= from) continue; // the client has it
      if (clock < from) return null; // the client's state ends inside it
      if (end >= 0 && clock + length <= end && solid) continue; // another entry holds it
      if (end >= 0 && clock < end) return null; // overlap
      solid &&= (list[i + 6] as number) === 0;
      const gap = end >= 0 ? clock - end : 0;
      kept.push(gap, list[i] as number, list[i + 3] as number, list[i + 4] as number, clock);
      count += (list[i + 5] as number) + (gap > 0 ? 1 : 0);
      end = clock + length;
    }
    if (kept.length > 0) merged.push({ client, kept, count });
  }
  merged.sort((a, b) => b.client - a.client); // as Yjs writes them: higher client ids first
  out.uint(merged.length);
  for (const { client, kept, count } of merged) {
    out.uint(count);
    out.uint(client);
    out.uint(kept[4] as number);
    // Runs that follow one another in the same entry are copied as one.
    let run = -1;
    let runStart = 0;
    let runEnd = 0;
    for (let i = 0; i < kept.length; i += 5) {
      const gap = kept[i] as number;
      const part = kept[i + 1] as number;
      const start = kept[i + 2] as number;
      if (gap === 0 && part === run && start === runEnd) {
        runEnd = kept[i + 3] as number;
        continue;
      }
      if (run >= 0) out.bytes((parts[run] as Part).update.subarray(runStart, runEnd));
      if (gap > 0) {
        out.byte(10); // Skip
        out.uint(gap);
      }
      run = part;
      runStart = start;
      runEnd = kept[i + 3] as number;
    }
    if (run >= 0) out.bytes((parts[run] as Part).update.subarray(runStart, runEnd));
  }
  writeDeleteSets(parts, out);
  return out.done();
}

/** Whether the records are already in clock order without overlaps (a snapshot's and a log of appends are). */
function sortedByClock(list: number[], order: number[]): boolean {
  for (let k = 1; k < order.length; k++) {
    const a = order[k - 1] as number;
    const b = order[k] as number;
    if ((list[b + 1] as number) < (list[a + 1] as number) + (list[a + 2] as number)) return false;
  }
  return true;
}

/** Bytes the united delete set may take at most (each range re-encoded: at most what it took, plus headers). */
function deleteSetBound(parts: readonly Part[]): number {
  return parts.reduce((n, { update, layout }) => n + update.length - layout.deleteSetAt + 20, 10);
}

/** The parts' delete sets united: per client, sorted ranges with overlapping and adjacent ones joined. */
function writeDeleteSets(parts: readonly Part[], w: Writer): void {
  const ranges = new Map<number, number[]>();
  for (const { update, layout } of parts) {
    const r = new Reader(update, layout.deleteSetAt);
    const clients = r.uint();
    for (let c = 0; c < clients; c++) {
      const client = r.uint();
      const n = r.uint();
      let list = ranges.get(client);
      if (!list) ranges.set(client, (list = []));
      for (let i = 0; i < n; i++) list.push(r.uint(), r.uint());
    }
  }
  const merged: Array<[number, number[]]> = [];
  for (const [client, list] of ranges) {
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < list.length; i += 2) pairs.push([list[i] as number, list[i + 1] as number]);
    pairs.sort((a, b) => a[0] - b[0]);
    const out: number[] = [];
    for (const [clock, len] of pairs) {
      const last = out.length - 2;
      if (last >= 0 && clock <= (out[last] as number) + (out[last + 1] as number)) {
        out[last + 1] = Math.max(out[last + 1] as number, clock + len - (out[last] as number));
      } else out.push(clock, len);
    }
    if (out.length > 0) merged.push([client, out]);
  }
  merged.sort((a, b) => b[0] - a[0]);
  w.uint(merged.length);
  for (const [client, list] of merged) {
    w.uint(client);
    w.uint(list.length / 2);
    for (const n of list) w.uint(n);
  }
}

/** lib0 varuints into a buffer sized up front (an upper bound; it grows should the bound be wrong). */
class Writer {
  private buf: Uint8Array;
  private pos = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  uint(n: number): void {
    this.room(10);
    while (n > 0x7f) {
      this.buf[this.pos++] = 0x80 | (n % 128);
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  done(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    bigger.set(this.buf.subarray(0, this.pos));
    this.buf = bigger;
  }
}

/** lib0 varuints from a delete set the bounded reader already walked (so none is -1). */
class Reader {
  private readonly at: ByteCursor;

  constructor(
    private readonly buf: Uint8Array,
    pos: number,
  ) {
    this.at = { pos };
  }

  uint(): number {
    return readVarUint(this.buf, this.at);
  }
}

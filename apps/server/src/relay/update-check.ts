/**
 * Checks what a Yjs update will cost before it comes near a room's document: the bounded reader
 * (update-reader.ts) counts structs, deletions, sub-documents and content and checks that every
 * string and value would decode; here the nesting depth of the shared types it creates is
 * resolved against the document (and the room's pending structs, which an update can complete),
 * and updates that could not apply yet are bounded.
 */
import * as Y from 'yjs';
import type { UpdateLimits } from './update-limits.js';
import { UpdateReader, UpdateRefused, type ItemRef, type UpdateCost } from './update-reader.js';
import { readVarUint } from './varuint.js';

export { UpdateRefused } from './update-reader.js';

export type UpdateCheck = { ok: true } | { ok: false; reason: string };

/** Throws UpdateRefused naming the limit passed (or `malformed`). */
export function checkUpdateCost(doc: Y.Doc, update: Uint8Array, limits: UpdateLimits): UpdateCost {
  const cost = new UpdateReader(update, limits).read();
  const store = doc.store;
  const pendingStructs = store.pendingStructs?.update ?? null;
  const known = (client: number): number => Math.max(Y.getState(store, client), cost.ends.get(client) ?? 0);
  const waitingDeletes = cost.deletes.filter((d) => d.end > known(d.client)).length;
  const held = limits.pendingHeldOnly === true;
  // Yjs retries deletions that cannot apply yet on every later update: keep them few.
  if (waitingDeletes > 0 && (store.pendingDs?.length ?? 0) + (held ? 0 : 6 * waitingDeletes) > limits.maxPendingDeleteBytes) {
    throw new UpdateRefused('pending_deletes', `deletions of more than ${limits.maxPendingDeleteBytes} bytes waiting for missing structs`);
  }
  const pendingBytes = (pendingStructs?.length ?? 0) + (store.pendingDs?.length ?? 0);
  if ((waitingDeletes > 0 || structsWait(store, cost, known)) && pendingBytes + (held ? 0 : update.length) > limits.maxPendingBytes) {
    throw new UpdateRefused('pending_bytes', `more than ${limits.maxPendingBytes} bytes of updates waiting for missing dependencies`);
  }
  // The update may complete pending structs (those waiting for a clock it brings): they then
  // integrate with it, so their depth counts now, even when the update itself nests nothing.
  const completes = [...(store.pendingStructs?.missing ?? [])].some(([client, clock]) => (cost.ends.get(client) ?? 0) > clock);
  if (!cost.items.some((i) => i.isType) && !completes) return cost;
  let items = cost.items;
  if (pendingStructs && completes) {
    const open: UpdateLimits = { ...limits, maxStructs: Infinity, maxContentBytes: Infinity, maxSubdocs: Infinity, maxDeleteRanges: Infinity, maxDeleteClients: Infinity };
    // Yjs keeps pending structs in the v2 format; they were checked when they arrived, so
    // converting them (lib0 recurses on values) is safe.
    items = new UpdateReader(Y.convertUpdateFormatV2ToV1(pendingStructs), open).read().items.concat(items);
  }
  new DepthResolver(doc, items, limits.maxDepth).check();
  return cost;
}

/**
 * The nesting depth of shared types created by `items` (gathered from several updates), resolved
 * within them and against `doc`. Throws UpdateRefused('depth'); returns the deepest level a type
 * of them has (0: they create no type). `outside`, when given, answers for an id none of the items
 * holds instead of `doc` (persistence/snapshot-stamp.ts: a stamped snapshot's items are not read).
 */
export function checkDepth(doc: Y.Doc, items: ItemRef[], maxDepth: number, outside?: OutsideLevel): number {
  return new DepthResolver(doc, items, maxDepth, outside).check();
}

/** The level to take for an id none of the items holds: of the type it creates (asParent) or sits in. */
export type OutsideLevel = (client: number, clock: number, asParent: boolean) => number;

/** Whether some structs cannot apply yet (a gap in a client's clocks, or an origin or parent not known). */
function structsWait(store: Y.Doc['store'], cost: UpdateCost, known: (client: number) => number): boolean {
  for (const { client, clock } of cost.starts) if (clock > Y.getState(store, client)) return true;
  for (const item of cost.items) if (item.parentKind !== 0 && item.pk >= known(item.pc)) return true;
  return false;
}

/** Nesting levels without recursion: root types are level 1, a type inside a level-n type is n+1. */
class DepthResolver {
  private readonly byClient = new Map<number, ItemRef[]>();
  private readonly levels = new Map<ItemRef, number>();
  private readonly typeLevels = new Map<unknown, number>();

  constructor(
    private readonly doc: Y.Doc,
    private readonly items: ItemRef[],
    private readonly maxDepth: number,
    private readonly outside?: OutsideLevel,
  ) {
    for (const item of items) {
      let list = this.byClient.get(item.client);
      if (!list) this.byClient.set(item.client, (list = []));
      list.push(item);
    }
    for (const list of this.byClient.values()) list.sort((a, b) => a.clock - b.clock);
  }

  check(): number {
    let deepest = 0;
    for (const item of this.items) {
      if (!item.isType) continue;
      const level = this.parentLevel(item) + 1;
      if (level > this.maxDepth) throw new UpdateRefused('depth', `shared types nested deeper than ${this.maxDepth}`);
      if (level > deepest) deepest = level;
    }
    return deepest;
  }

  /** Level of the type holding `item` (0: unknown yet, or not a type). */
  private parentLevel(start: ItemRef): number {
    // Follow parents and origins through the batch to a known level, then unwind: an item's level
    // is the next one's plus its step (+1 when the next one is the type it sits in).
    const chain: Array<{ item: ItemRef; step: number }> = [];
    const seen = new Set<ItemRef>();
    let base = 0;
    for (let item: ItemRef | undefined = start; item; ) {
      const known = this.levels.get(item);
      if (known !== undefined) {
        base = known;
        break;
      }
      if (seen.has(item)) break; // a cycle never integrates
      seen.add(item);
      if (item.parentKind === 0) {
        this.levels.set(item, (base = 1));
        break;
      }
      const ref = this.find(item.pc, item.pk);
      if (ref === undefined) {
        const asParent = item.parentKind === 1;
        this.levels.set(item, (base = this.outside ? this.outside(item.pc, item.pk, asParent) : this.docLevel(item.pc, item.pk, asParent)));
        break;
      }
      // a parent that is not a type leaves the item without a parent (level 0)
      chain.push({ item, step: item.parentKind === 2 ? 0 : ref.isType ? 1 : -Infinity });
      item = ref;
    }
    let level = base;
    for (let i = chain.length - 1; i >= 0; i--) {
      const link = chain[i] as { item: ItemRef; step: number };
      level = level === 0 && link.step === 1 ? 0 : Math.max(0, level + link.step);
      this.levels.set(link.item, level);
    }
    return this.levels.get(start) ?? 0;
  }

  private find(client: number, clock: number): ItemRef | undefined {
    const list = this.byClient.get(client);
    if (!list) return undefined;
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const item = list[mid] as ItemRef;
      if (item.clock + item.length <= clock) lo = mid + 1;
      else if (item.clock > clock) hi = mid - 1;
      else return item;
    }
    return undefined;
  }

  /** Level of the type an id's item creates (asParent) or sits in, read from the document. */
  private docLevel(client: number, clock: number, asParent: boolean): number {
    if (clock >= Y.getState(this.doc.store, client)) return 0;
    let struct: Y.Item | Y.GC;
    try {
      struct = Y.getItem(this.doc.store, Y.createID(client, clock)) as Y.Item | Y.GC;
    } catch {
      return 0;
    }
    if (!(struct instanceof Y.Item)) return 0;
    if (asParent) return struct.content instanceof Y.ContentType ? this.typeLevel(struct.content.type) : 0;
    return struct.parent instanceof Y.AbstractType ? this.typeLevel(struct.parent) : 0;
  }

  private typeLevel(type: Y.AbstractType<unknown>): number {
    const known = this.typeLevels.get(type);
    if (known !== undefined) return known;
    let level = 1;
    let t: Y.AbstractType<unknown> | null = type;
    while (t?._item && level <= this.maxDepth + 1) {
      const parent: unknown = t._item.parent;
      t = parent instanceof Y.AbstractType ? parent : null;
      level++;
    }
    this.typeLevels.set(type, level);
    return level;
  }
}

export type StateVectorCount = { ok: true; clients: number; tooMany: boolean } | { ok: false; reason: string };

/**
 * Reads a state vector's shape (lib0 varints, as Y.decodeStateVector reads them: a count, then a
 * client id and a clock per entry) without building anything: Y.decodeStateVector makes a Map
 * entry per client, and a 10 MiB frame holds 2.4 million of them (seconds of event loop, hundreds
 * of MB). More than `maxClients` entries is `tooMany` from the count alone, before any is read
 * (the caller does not decode it); otherwise the entries are walked so that the one decode Yjs
 * does next cannot throw.
 */
export function countStateVector(stateVector: Uint8Array, maxClients: number): StateVectorCount {
  // lib0/decoding.js readVarUint throws at the end of the array (and past 53 bits): refused here first
  const at = { pos: 0 };
  const count = readVarUint(stateVector, at);
  if (count < 0) return { ok: false, reason: 'truncated state vector or integer out of range' };
  if (count > maxClients) return { ok: true, clients: count, tooMany: true };
  for (let i = 0; i < count; i++) {
    if (readVarUint(stateVector, at) < 0 || readVarUint(stateVector, at) < 0) return { ok: false, reason: 'truncated state vector or integer out of range' };
  }
  return { ok: true, clients: count, tooMany: false };
}

/**
 * Well-formed Yjs v1 updates built to hurt a server (tests and the structure-aware fuzzer):
 * written byte by byte with lib0, so building them costs the test nothing and no local Y.Doc
 * has to survive them. Format: yjs/src/utils/encoding.js.
 */
import * as encoding from 'lib0/encoding';

type Enc = encoding.Encoder;

/** One client section of items, in order: each writer writes one struct and returns its length. */
export function updateOf(client: number, clock: number, structs: Array<(e: Enc) => number>, ds: Array<[number, Array<[number, number]>]> = []): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, structs.length > 0 ? 1 : 0);
  if (structs.length > 0) {
    encoding.writeVarUint(e, structs.length);
    encoding.writeVarUint(e, client);
    encoding.writeVarUint(e, clock);
    for (const write of structs) write(e);
  }
  writeDs(e, ds);
  return encoding.toUint8Array(e);
}

function writeDs(e: Enc, ds: Array<[number, Array<[number, number]>]>): void {
  encoding.writeVarUint(e, ds.length);
  for (const [client, ranges] of ds) {
    encoding.writeVarUint(e, client);
    encoding.writeVarUint(e, ranges.length);
    for (const [clock, len] of ranges) {
      encoding.writeVarUint(e, clock);
      encoding.writeVarUint(e, len);
    }
  }
}

export type Parent = { root: string } | { item: [number, number] };

/** Item header without origins: its parent (root name or the item of a type), and a map key. */
function header(e: Enc, ref: number, parent: Parent, key?: string): void {
  encoding.writeUint8(e, ref | (key !== undefined ? 0x20 : 0));
  if ('root' in parent) {
    encoding.writeVarUint(e, 1);
    encoding.writeVarString(e, parent.root);
  } else {
    encoding.writeVarUint(e, 0);
    encoding.writeVarUint(e, parent.item[0]);
    encoding.writeVarUint(e, parent.item[1]);
  }
  if (key !== undefined) encoding.writeVarString(e, key);
}

/** A nested Y.Map (ContentType, YMap ref 1) under `parent`, at map key `key`. */
export const mapItem = (parent: Parent, key = 'k') => (e: Enc): number => {
  header(e, 7, parent, key);
  encoding.writeVarUint(e, 1);
  return 1;
};

/** A string item in a Y.Text or map. */
export const stringItem = (parent: Parent, text: string, key?: string) => (e: Enc): number => {
  header(e, 4, parent, key);
  encoding.writeVarString(e, text);
  return text.length;
};

/** A ContentAny item holding `values` (lib0 writeAny). */
export const anyItem = (parent: Parent, values: unknown[], key?: string) => (e: Enc): number => {
  header(e, 8, parent, key);
  encoding.writeVarUint(e, values.length);
  for (const v of values) encoding.writeAny(e, v as never);
  return values.length;
};

/** A ContentAny item whose value is `depth` nested arrays (written without recursion). */
export const deepAnyItem = (parent: Parent, depth: number, key?: string) => (e: Enc): number => {
  header(e, 8, parent, key);
  encoding.writeVarUint(e, 1);
  for (let i = 0; i < depth; i++) {
    encoding.writeUint8(e, 117);
    encoding.writeVarUint(e, 1);
  }
  encoding.writeUint8(e, 126);
  return 1;
};

/** A ContentJSON item with one raw JSON string. */
export const jsonItem = (parent: Parent, json: string, key?: string) => (e: Enc): number => {
  header(e, 2, parent, key);
  encoding.writeVarUint(e, 1);
  encoding.writeVarString(e, json);
  return 1;
};

/** A sub-document (ContentDoc) item; Yjs writes `opts` as an object (null makes Yjs throw reading it). */
export const subdocItem = (parent: Parent, guid: string, opts: unknown = {}) => (e: Enc): number => {
  header(e, 9, parent);
  encoding.writeVarString(e, guid);
  encoding.writeAny(e, opts as never);
  return 1;
};

/** `depth` Y.Maps, each inside the previous one, in one update. */
export function deepNesting(client: number, depth: number, root = 'm'): Uint8Array {
  const structs = [mapItem({ root })];
  for (let i = 1; i < depth; i++) structs.push(mapItem({ item: [client, i - 1] }));
  return updateOf(client, 0, structs);
}

/** One more level at `clock` inside the map created at clock - 1 (or the root at clock 0). */
export function nestingStep(client: number, clock: number, root = 'm'): Uint8Array {
  return updateOf(client, clock, [mapItem(clock === 0 ? { root } : { item: [client, clock - 1] })]);
}

/** A delete set naming `clients` clients that the document has never seen. */
export function deleteSetOfStrangers(clients: number, firstClient = 1_000_000): Uint8Array {
  const ds: Array<[number, Array<[number, number]>]> = [];
  for (let i = 0; i < clients; i++) ds.push([firstClient + i, [[0, 1]]]);
  return updateOf(0, 0, [], ds);
}

/** `count` map entries with distinct keys in one update (a huge map), written in one loop. */
export function hugeMap(client: number, count: number, root = 'm'): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1);
  encoding.writeVarUint(e, count);
  encoding.writeVarUint(e, client);
  encoding.writeVarUint(e, 0);
  for (let i = 0; i < count; i++) {
    encoding.writeUint8(e, 8 | 0x20); // ContentAny with a map key
    encoding.writeVarUint(e, 1);
    encoding.writeVarString(e, root);
    encoding.writeVarString(e, `k${i}`);
    encoding.writeVarUint(e, 1);
    encoding.writeUint8(e, 125); // integer
    encoding.writeVarInt(e, i);
  }
  writeDs(e, []);
  return encoding.toUint8Array(e);
}

/** `count` sub-documents in one update. */
export function manySubdocs(client: number, count: number, root = 'a'): Uint8Array {
  const structs = [];
  for (let i = 0; i < count; i++) structs.push(subdocItem({ root }, `sub-${client}-${i}`));
  return updateOf(client, 0, structs);
}

/** A nested Y.Map placed right after item `origin` (its parent is the origin's parent). */
export const mapAfter = (origin: [number, number]) => (e: Enc): number => {
  encoding.writeUint8(e, 7 | 0x80);
  encoding.writeVarUint(e, origin[0]);
  encoding.writeVarUint(e, origin[1]);
  encoding.writeVarUint(e, 1);
  return 1;
};

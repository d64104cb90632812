/**
 * A bounded, streaming reader of Yjs v1 updates: it walks the binary once, counts what applying
 * it would cost, and stops at the first limit passed, before anything is built. Nothing here
 * recurses, so no input can overflow the stack (lib0's readAny and Yjs's decodeUpdate do).
 * Format: yjs/src/utils/encoding.js (writeStructs, writeDeleteSet) and lib0/encoding.js (writeAny).
 */
import { isAscii as bufferIsAscii } from 'node:buffer';
import { jsonDepth } from './presence.js';
import { readVarUint, type ByteCursor } from './varuint.js';
import type { UpdateLimits } from './update-limits.js';

/** Refused: names the limit (or `malformed`). */
export class UpdateRefused extends Error {
  constructor(
    readonly limit: string,
    detail: string,
  ) {
    super(detail);
    this.name = 'UpdateRefused';
  }
}

/** What the depth check needs of one item: where it is and how its parent is named. */
export interface ItemRef {
  client: number;
  clock: number;
  length: number;
  /** 0: root type (level 1); 1: parent is the type of item (pc, pk); 2: same parent as item (pc, pk) */
  parentKind: 0 | 1 | 2;
  pc: number;
  pk: number;
  /** the item creates a nested shared type */
  isType: boolean;
}

export interface UpdateCost {
  structs: number;
  deleteRanges: number;
  deleteClients: number;
  subdocs: number;
  contentBytes: number;
  items: ItemRef[];
  /** per client, the highest clock this update ends at (for pending predictions) */
  ends: Map<number, number>;
  deletes: Array<{ client: number; clock: number; end: number }>;
  /** where each client section starts */
  starts: Array<{ client: number; clock: number }>;
}

/**
 * Where each struct of an update lies, for merging updates byte for byte without decoding them
 * (persistence/stored-bytes.ts): five numbers per struct (client, clock, length, first byte,
 * byte after it); Skip structs are left out (a gap in the clocks says the same).
 */
export interface UpdateLayout {
  /** filled only when given (a snapshot holds many structs: the sections are usually enough) */
  structs?: number[];
  /** seven numbers per client section: client, first clock, length in clock units, first byte, byte after it, structs, Skip structs among them */
  sections: number[];
  /** where the delete set starts */
  deleteSetAt: number;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Every byte below 0x80: a loop for the short strings updates mostly hold, node's vectorised check for long ones. */
function isAscii(raw: Uint8Array): boolean {
  if (raw.length > 32) return bufferIsAscii(raw);
  for (let i = 0; i < raw.length; i++) if ((raw[i] as number) >= 0x80) return false;
  return true;
}

export class UpdateReader {
  /** where reading goes on (varuint.ts moves it) */
  private readonly cursor: ByteCursor = { pos: 0 };
  readonly cost: UpdateCost;

  constructor(
    private readonly buf: Uint8Array,
    private readonly limits: UpdateLimits,
    cost?: UpdateCost,
    private readonly layout?: UpdateLayout,
  ) {
    this.cost = cost ?? { structs: 0, deleteRanges: 0, deleteClients: 0, subdocs: 0, contentBytes: 0, items: [], ends: new Map(), deletes: [], starts: [] };
  }

  /** Reads the whole update; throws UpdateRefused. */
  read(): UpdateCost {
    const sections = this.uint();
    for (let s = 0; s < sections; s++) {
      const count = this.uint();
      const client = this.uint();
      let clock = this.uint();
      this.addStructs(1); // a section costs a map entry even when empty
      this.cost.starts.push({ client, clock });
      const first = clock;
      const from = this.cursor.pos;
      let skips = 0;
      for (let i = 0; i < count; i++) {
        this.addStructs(1);
        const start = this.cursor.pos;
        const length = this.struct(client, clock);
        if (this.layout && ((this.buf[start] as number) & 0b11111) === 10) skips++;
        else if (this.layout?.structs) this.layout.structs.push(client, clock, length, start, this.cursor.pos);
        clock += length;
        if (clock > Number.MAX_SAFE_INTEGER) this.refuse('malformed', 'a struct ending past clock 2^53 - 1');
      }
      if (this.layout && count > 0) this.layout.sections.push(client, first, clock - first, from, this.cursor.pos, count, skips);
      this.cost.ends.set(client, Math.max(this.cost.ends.get(client) ?? 0, clock));
    }
    if (this.layout) this.layout.deleteSetAt = this.cursor.pos;
    this.deleteSet();
    return this.cost;
  }

  private deleteSet(): void {
    const clients = this.uint();
    for (let c = 0; c < clients; c++) {
      if (++this.cost.deleteClients > this.limits.maxDeleteClients) this.refuse('delete_clients', `delete set names more than ${this.limits.maxDeleteClients} clients`);
      const client = this.uint();
      const ranges = this.uint();
      for (let r = 0; r < ranges; r++) {
        if (++this.cost.deleteRanges > this.limits.maxDeleteRanges) this.refuse('delete_ranges', `delete set has more than ${this.limits.maxDeleteRanges} ranges`);
        const clock = this.uint();
        const len = this.uint();
        if (len === 0) this.refuse('malformed', 'an empty deletion'); // Yjs cannot re-encode it
        if (clock + len > Number.MAX_SAFE_INTEGER) this.refuse('malformed', 'a deletion ending past clock 2^53 - 1');
        this.cost.deletes.push({ client, clock, end: clock + len });
      }
    }
  }

  /** One struct; returns its length in clock units. */
  private struct(client: number, clock: number): number {
    const info = this.byte();
    const ref = info & 0b11111;
    if (ref === 0 || ref === 10) return this.uint(); // GC, Skip
    const item: ItemRef = { client, clock, length: 1, parentKind: 0, pc: 0, pk: 0, isType: false };
    const hasOrigin = (info & 0x80) !== 0;
    const hasRightOrigin = (info & 0x40) !== 0;
    if (hasOrigin) {
      item.parentKind = 2;
      item.pc = this.uint();
      item.pk = this.id(item, item.pc);
    }
    if (hasRightOrigin) {
      const rc = this.uint();
      const rk = this.id(item, rc);
      if (!hasOrigin) Object.assign(item, { parentKind: 2, pc: rc, pk: rk });
    }
    if (!hasOrigin && !hasRightOrigin) {
      if (this.uint() === 1) {
        this.key(); // root type name
        item.parentKind = 0;
      } else {
        item.parentKind = 1;
        item.pc = this.uint();
        item.pk = this.id(item, item.pc);
      }
      if ((info & 0x20) !== 0) this.key(); // map key (parentSub)
    }
    item.length = this.content(ref, item);
    if (item.length < 1) this.refuse('malformed', 'empty item');
    this.cost.items.push(item);
    return item.length;
  }

  /**
   * The clock of an id an item refers to. Yjs integrates a client's structs in clock order and
   * does not wait for its own client: a reference to the item itself or later fails in Yjs.
   */
  private id(item: ItemRef, client: number): number {
    const clock = this.uint();
    if (client === item.client && clock >= item.clock) this.refuse('malformed', 'an item refers to itself or a later item of its client');
    return clock;
  }

  /** Item content by its reference number (yjs/src/structs/Item.js contentRefs); returns its length. */
  private content(ref: number, item: ItemRef): number {
    switch (ref) {
      case 1: // Deleted
        return this.uint();
      case 2: {
        // JSON: strings, each JSON.parse'd on apply
        const n = this.uint();
        for (let i = 0; i < n; i++) this.json();
        return n;
      }
      case 3: // Binary
        this.contentBytesOf(this.bytes());
        return 1;
      case 4: // String: length in UTF-16 code units
        return this.textLength(this.bytes());
      case 5: // Embed
        this.json();
        return 1;
      case 6: // Format: key, JSON value
        this.key();
        this.json();
        return 1;
      case 7: {
        // Type
        const typeRef = this.uint();
        if (typeRef > 6) this.refuse('malformed', `unknown type ${typeRef}`);
        if (typeRef === 3 || typeRef === 5) this.key(); // XmlElement node name, XmlHook name
        item.isType = true;
        return 1;
      }
      case 8: {
        // Any
        const n = this.uint();
        for (let i = 0; i < n; i++) this.any();
        return n;
      }
      case 9: // Doc: guid, options
        if (++this.cost.subdocs > this.limits.maxSubdocs) this.refuse('subdocs', `more than ${this.limits.maxSubdocs} sub-documents`);
        this.key();
        this.subdocOptions();
        return 1;
      default:
        return this.refuse('malformed', `unknown content ${ref}`);
    }
  }

  /**
   * A sub-document's options. Yjs (yjs/src/structs/ContentDoc.js, createDocFromOpts) spreads them
   * into a Doc's options and reads `opts.shouldLoad`: anything but an object (null, undefined)
   * throws on apply, on the server and on every client. Keys it passes on unchecked are refused
   * where a value readAny can give breaks Yjs: a `guid` that is not a string (ContentDoc.write
   * encodes it as one: encoding the document throws), `gcFilter` (called as a function when the
   * sub-document collects garbage), `__proto__` (not a plain object). Yjs itself writes an
   * object with gc, autoLoad and meta only.
   */
  private subdocOptions(): void {
    if (this.byte() !== 118) this.refuse('malformed', 'sub-document options that are not an object');
    this.contentBytes(1);
    const n = this.uint();
    for (let i = 0; i < n; i++) {
      const raw = this.bytes();
      this.checkKey(raw);
      const key = decoder.decode(raw);
      if (key === 'gcFilter' || key === '__proto__') this.refuse('malformed', `a sub-document option ${key}`);
      if (key === 'guid' && this.buf[this.cursor.pos] !== 119) this.refuse('malformed', 'a sub-document guid that is not a string');
      this.any(1);
    }
  }

  /** lib0 readAny without recursion, bounded in depth and size (`depth`: levels already open around it). */
  private any(depth = 0): void {
    // each open level: values still to read, and whether they are object entries (key first)
    const left: number[] = [1];
    const isObject: boolean[] = [false];
    while (left.length > 0) {
      const top = left.length - 1;
      if (left[top] === 0) {
        left.pop();
        isObject.pop();
        continue;
      }
      left[top] = (left[top] as number) - 1;
      if (isObject[top] === true) this.key();
      const type = this.byte();
      this.contentBytes(1);
      switch (type) {
        case 127: case 126: case 121: case 120:
          break;
        case 125: this.varint(); break;
        case 124: this.skip(4); this.contentBytes(4); break;
        case 123: case 122: this.skip(8); this.contentBytes(8); break;
        case 119: this.textLength(this.bytes()); break;
        case 116: this.contentBytesOf(this.bytes()); break;
        case 118: case 117: {
          if (left.length + depth >= this.limits.maxValueDepth) this.refuse('value_depth', `value nested deeper than ${this.limits.maxValueDepth}`);
          left.push(this.uint());
          isObject.push(type === 118);
          break;
        }
        default:
          this.refuse('malformed', `unknown value type ${type}`);
      }
    }
  }

  /**
   * A string's length in UTF-16 code units, checked as lib0 reads it (fatal UTF-8: invalid bytes
   * would throw while applying). ASCII bytes are valid UTF-8 and one code unit each, so most
   * strings are checked without being decoded.
   */
  private textLength(raw: Uint8Array): number {
    if (isAscii(raw)) {
      this.contentBytesOf(raw);
      return raw.length;
    }
    return this.stringOf(raw).length;
  }

  private stringOf(raw: Uint8Array): string {
    this.contentBytesOf(raw);
    try {
      return decoder.decode(raw);
    } catch {
      return this.refuse('malformed', 'invalid UTF-8');
    }
  }

  /** A JSON string: bounded nesting (JSON.stringify recurses when the update is re-encoded), valid. */
  private json(): void {
    const raw = this.bytes();
    if (jsonDepth(raw) > this.limits.maxValueDepth) this.refuse('value_depth', `JSON nested deeper than ${this.limits.maxValueDepth}`);
    const text = this.stringOf(raw);
    if (text === 'undefined') return;
    try {
      JSON.parse(text);
    } catch {
      this.refuse('malformed', 'invalid JSON content');
    }
  }

  private key(): void {
    this.checkKey(this.bytes());
  }

  private checkKey(raw: Uint8Array): void {
    if (raw.length > this.limits.maxKeyBytes) this.refuse('key_bytes', `a key or name longer than ${this.limits.maxKeyBytes} bytes`);
    this.textLength(raw);
  }

  private addStructs(n: number): void {
    this.cost.structs += n;
    if (this.cost.structs > this.limits.maxStructs) this.refuse('structs', `more than ${this.limits.maxStructs} structs`);
  }

  private contentBytesOf(raw: Uint8Array): void {
    this.contentBytes(raw.length);
  }

  private contentBytes(n: number): void {
    this.cost.contentBytes += n;
    if (this.cost.contentBytes > this.limits.maxContentBytes) this.refuse('content_bytes', `content larger than ${this.limits.maxContentBytes} bytes`);
  }

  private bytes(): Uint8Array {
    const len = this.uint();
    const start = this.cursor.pos;
    this.skip(len);
    return this.buf.subarray(start, start + len);
  }

  private skip(n: number): void {
    if (this.cursor.pos + n > this.buf.length) this.refuse('malformed', 'unexpected end of update');
    this.cursor.pos += n;
  }

  private byte(): number {
    if (this.cursor.pos >= this.buf.length) this.refuse('malformed', 'unexpected end of update');
    return this.buf[this.cursor.pos++] as number;
  }

  /** lib0 varuint, up to 2^53 - 1 (clients encode larger ones inexactly: packages/client/src/update-screen.ts refuses them too) */
  private uint(): number {
    const n = readVarUint(this.buf, this.cursor);
    if (n < 0) this.refuse('malformed', this.cursor.pos >= this.buf.length ? 'unexpected end of update' : 'integer out of range');
    return n;
  }

  /** lib0 varint (first byte: sign and 6 bits) */
  private varint(): void {
    let b = this.byte();
    let mult = 64;
    while (b >= 0x80) {
      b = this.byte();
      mult *= 128;
      if (mult > Number.MAX_SAFE_INTEGER * 128) this.refuse('malformed', 'integer out of range');
    }
  }

  private refuse(limit: string, detail: string): never {
    throw new UpdateRefused(limit, detail);
  }
}

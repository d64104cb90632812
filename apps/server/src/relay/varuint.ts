/**
 * lib0's varuint (7 bits per byte, low bits first, high bit set on every byte but the last), read
 * without throwing, for the readers that bound hostile input before lib0 or Yjs see it:
 * update-reader.ts, update-check.ts (state vectors), presence.ts (awareness updates) and
 * persistence/stored-bytes.ts (delete sets).
 */

/** Where the next varuint starts; readVarUint moves it past what it read. */
export interface ByteCursor {
  pos: number;
}

/**
 * The varuint at `at.pos`, or -1 when the bytes end first or it does not fit 2^53 - 1 (lib0 and
 * Yjs would read such a value inexactly or throw).
 */
export function readVarUint(buf: Uint8Array, at: ByteCursor): number {
  let num = 0;
  let mult = 1;
  while (at.pos < buf.length) {
    const b = buf[at.pos++] as number;
    num += (b & 0x7f) * mult;
    if (b < 0x80) return num > Number.MAX_SAFE_INTEGER ? -1 : num;
    mult *= 128;
    if (mult > Number.MAX_SAFE_INTEGER) return -1;
  }
  return -1;
}

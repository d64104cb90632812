/** A group commit packed for the storage thread (sqlite.ts -> sqlite-worker.ts). */
import type { AppendBatch } from './types.js';

/**
 * A group commit as it crosses to the storage thread: every update's bytes in one buffer that is
 * transferred, not cloned (cloning one small array per update was about 3% of the event loop's
 * busy time in the relay bench, bench/relay.ts, more than the update cost check).
 */
export interface PackedBatches {
  rooms: string[];
  /** updates per room */
  counts: number[];
  /** the generation each room's batch names (types.ts AppendBatch); null: none */
  generations: Array<number | null>;
  /** bytes per update, in order */
  lengths: number[];
  data: ArrayBuffer;
}

export function packBatches(batches: readonly AppendBatch[]): PackedBatches {
  const lengths: number[] = [];
  let total = 0;
  for (const b of batches) for (const u of b.updates) total += (lengths.push(u.length), u.length);
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const b of batches) for (const u of b.updates) (bytes.set(u, offset), (offset += u.length));
  return {
    rooms: batches.map((b) => b.room),
    counts: batches.map((b) => b.updates.length),
    generations: batches.map((b) => b.generation ?? null),
    lengths,
    data: bytes.buffer,
  };
}

export function unpackBatches(packed: PackedBatches): AppendBatch[] {
  const bytes = new Uint8Array(packed.data);
  const out: AppendBatch[] = [];
  let u = 0;
  let offset = 0;
  for (const [i, room] of packed.rooms.entries()) {
    const updates: Uint8Array[] = [];
    for (let n = 0; n < (packed.counts[i] ?? 0); n++, u++) {
      const length = packed.lengths[u] ?? 0;
      updates.push(bytes.subarray(offset, offset + length));
      offset += length;
    }
    const generation = packed.generations[i];
    out.push(generation === null || generation === undefined ? { room, updates } : { room, updates, generation });
  }
  return out;
}

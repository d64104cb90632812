/**
 * When a room's stored log is folded into its snapshot (room-registry.ts, after each commit).
 *
 * Every compaction costs the whole document: it is encoded, read by the stamp's check, hashed and
 * written (compaction.ts, persistence/snapshot-stamp.ts). Folding every COMPACT_AFTER_UPDATES
 * entries made a large room pay per update in proportion to its size: one compaction of a 3.1 MB
 * room took about 160 ms (docs/benchmarks.md, relay), 0.3 ms per update at 500 entries, where
 * relaying an update costs some microseconds. So the log must also weigh a share of the snapshot
 * (1/LOG_SHARE of its bytes) before it is folded: the cost per stored byte stays bounded whatever
 * the document's size, and storage holds at most about 1 + 1/LOG_SHARE times the snapshot between
 * compactions. A room whose snapshot is small is folded every COMPACT_AFTER_UPDATES entries, as
 * before; a long log is folded at MAX_LOG_FACTOR times that many entries whatever it weighs, as
 * every load of the room (and a cold load's merge, persistence/stored-bytes.ts) reads it all: a
 * restarted server's first load of a 2.3 MB room took 59 ms with the log at most 500 entries long,
 * 72 ms at most 1,000 and 171 ms at most 4,000 (docs/benchmarks.md, cold-load); at shutdown the
 * open rooms' long logs are folded (room-registry.ts foldLongLogs).
 */

/** the log is folded once its bytes reach this fraction (1/LOG_SHARE) of the snapshot's */
export const LOG_SHARE = 16;
/** ... or once it holds this many times COMPACT_AFTER_UPDATES entries */
export const MAX_LOG_FACTOR = 2;

export function compactionDue(log: { entries: number; bytes: number }, snapshotBytes: number, compactAfter: number): boolean {
  if (log.entries < compactAfter) return false;
  return log.entries >= compactAfter * MAX_LOG_FACTOR || log.bytes * LOG_SHARE >= snapshotBytes;
}

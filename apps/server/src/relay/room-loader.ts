/**
 * Reads one relay room from storage into a new Room (the registry's `loading` state,
 * rooms/lifecycle.ts). Subscribed to the other instances first, so nothing they tell is missed
 * between the read and the room being in memory; entries that cannot load are set aside.
 */
import type { ServerMetrics } from '@sync-suite/shared/node';
import { loadStoredRoom, type Quarantined } from './persistence/merge.js';
import { prepareColdState } from './persistence/stored-bytes.js';
import type { FlushQueue } from './persistence/flush-queue.js';
import type { DocStore } from './persistence/types.js';
import type { RemoteIntake } from './remote-intake.js';
import { storedSize, type Room } from './room.js';
import type { RoomReports } from './room-reports.js';
import type { UpdateLimits } from './update-limits.js';

export interface RoomLoaderDeps {
  store: DocStore;
  persist: Pick<FlushQueue, 'hasPending' | 'flush'>;
  remote: Pick<RemoteIntake, 'subscribe' | 'unsubscribe'>;
  metrics: ServerMetrics;
  limits: UpdateLimits;
  reports: RoomReports;
  createRoom(name: string): Room;
  /** rooms whose stored state threw while a cold load built the document: they load through a Y.Doc */
  coldUnsafe: ReadonlySet<string>;
}

/**
 * A cold room's document is built this long after it was read at the latest: building blocks the
 * event loop, and the stored state it answered with should be on the wire first.
 */
const WARM_AFTER_MS = 100;

/** The room as stored; on failure nothing stays subscribed. */
export async function readRoom(deps: RoomLoaderDeps, name: string): Promise<Room> {
  // An evicted room may still have updates waiting: storage must hold them before we read it.
  if (deps.persist.hasPending(name)) await deps.persist.flush(name);
  await deps.remote.subscribe(name);
  let stored: Awaited<ReturnType<DocStore['load']>>;
  try {
    stored = await deps.store.load(name);
  } catch (err) {
    deps.remote.unsubscribe(name);
    throw err;
  }
  let loaded: { value: Room; quarantined: Quarantined[] };
  try {
    // Served from the stored bytes until the document is built (relay/room.ts); the Y.Doc path
    // when they cannot be (nothing stored, entries nested too deep together, or known to throw).
    const cold = deps.coldUnsafe.has(name) ? null : prepareColdState(stored, deps.limits);
    if (cold) {
      const room = deps.createRoom(name);
      room.startCold(cold, WARM_AFTER_MS);
      loaded = { value: room, quarantined: cold.quarantined };
    } else {
      loaded = loadStoredRoom(stored, deps.limits, () => deps.createRoom(name), (r) => r.doc, (r) => r.destroy());
    }
  } catch (err) {
    deps.remote.unsubscribe(name);
    deps.metrics.storageErrors.inc({ op: 'load' });
    throw err;
  }
  const room = loaded.value;
  if (loaded.quarantined.length > 0) deps.reports.quarantined(name, loaded.quarantined, 'load');
  room.logLength = stored.updates.length;
  room.logBytes = stored.updates.reduce((n, u) => n + u.length, 0);
  room.snapshotBytes = stored.snapshot?.length ?? 0;
  room.snapshotSeq = stored.snapshotSeq;
  room.generation = stored.generation;
  room.storedBytes = storedSize(stored);
  return room;
}

/**
 * Trouble with a relay room told to the operator: stored entries set aside, updates from other
 * instances refused, rooms that fail to load, cold loads whose stored state threw. Counted every
 * time; logged once per REPORT_EVERY_MS per room, so a room that keeps failing (and stock clients
 * that keep retrying it) never floods the log.
 */
import type { FastifyBaseLogger } from 'fastify';
import { ReportGate, type ServerMetrics } from '@sync-suite/shared/node';
import type { Quarantined, StoredEntryFailed } from './persistence/merge.js';
import type { UpdateRefused } from './update-check.js';

const REPORT_EVERY_MS = 60_000;
/** names remembered at most (then forgotten all at once: at worst a few repeats) */
const MAX_REMEMBERED = 10_000;

export class RoomReports {
  private readonly gate = new ReportGate(REPORT_EVERY_MS, MAX_REMEMBERED);

  constructor(
    private readonly metrics: ServerMetrics,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Whether to report trouble under this key now. */
  shouldReport(key: string): boolean {
    return this.gate.shouldReport(key);
  }

  quarantined(room: string, entries: readonly Quarantined[], source: 'load' | 'compact'): void {
    this.metrics.quarantinedUpdates.inc({ source }, entries.length);
    if (!this.shouldReport(`q:${room}`)) return;
    const list = entries.map((q) => ({ index: q.index, bytes: q.update.length, reason: q.reason }));
    this.log.warn({ room, entries: list.slice(0, 20), count: list.length }, 'stored relay updates set aside (quarantined); the rest of the room loaded');
  }

  /** A cold room's stored state threw while its document was built (the room is reloaded). */
  warmFailed(room: string, failure: StoredEntryFailed): void {
    this.metrics.storageErrors.inc({ op: 'load' });
    if (this.shouldReport(`w:${room}`)) this.log.warn({ room, index: failure.index, detail: String(failure.failure) }, 'stored relay update failed to apply after a cold load; reloading the room');
  }

  /**
   * Another instance published updates of a generation this room's delete ended (committed just
   * before the delete, published after): dropped, never applied. Counted; one warn line per room
   * per REPORT_EVERY_MS.
   */
  staleRemote(room: string, generation: number, held: number): void {
    this.metrics.storageErrors.inc({ op: 'relay_stale_update' });
    if (this.shouldReport(`s:${room}`)) this.log.warn({ room, generation, held }, 'relay update from another instance of a deleted generation of the room dropped');
  }

  remoteRefused(room: string, refusal: UpdateRefused): void {
    this.metrics.quarantinedUpdates.inc({ source: 'remote' });
    if (this.shouldReport(`r:${room}`)) this.log.warn({ room, limit: refusal.limit, detail: refusal.message }, 'relay update from another instance refused');
  }
}

/**
 * The one call storage makes after a room's updates are committed (relay, and sealed rooms the
 * same way): it only marks the room dirty; the webhook notifier's timer does the rest, so nothing
 * here ever slows relaying.
 */
import type { WebhookOutbox } from './outbox/types.js';

export interface RoomChanges {
  /** `updates` were committed for the room */
  changed(room: string, updates: number): void;
  /** the room was deleted through the admin API */
  deleted(room: string): void;
}

/** What the server holds (`ctx.changes`): RoomChanges, plus where events wait and the shutdown step. */
export interface RoomChangeNotifier extends RoomChanges {
  /** the storage engine's outbox, once storage is open (relay/rooms-plugin.ts) */
  useOutbox(outbox: WebhookOutbox): void;
  /**
   * At shutdown, after the last commit and before storage closes: stores every pending burst's
   * event and stops delivery (bounded), leaving what is unsent in the outbox.
   */
  close(): Promise<void>;
}

/** Webhooks off. */
export const NO_ROOM_CHANGES: RoomChangeNotifier = {
  changed: () => undefined,
  deleted: () => undefined,
  useOutbox: () => undefined,
  close: async () => undefined,
};

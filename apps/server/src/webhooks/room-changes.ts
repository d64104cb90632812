/**
 * The one call storage makes after a room's updates are committed (relay, and sealed rooms the
 * same way): it only marks the room dirty; the webhook notifier's timer does the rest, so nothing
 * here ever slows relaying.
 */
export interface RoomChanges {
  /** `updates` were committed for the room */
  changed(room: string, updates: number): void;
  /** the room was deleted through the admin API */
  deleted(room: string): void;
}

/** Webhooks off. */
export const NO_ROOM_CHANGES: RoomChanges = {
  changed: () => undefined,
  deleted: () => undefined,
};

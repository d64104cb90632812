/**
 * Applying what other instances sent to a room held here. Remote updates are not persisted (the
 * instance that accepted them committed them before publishing) and are forwarded to local
 * connections only when they changed the document, so duplicates cost nothing downstream.
 */
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import type { Room } from '../relay/room.js';

/** Transaction origin of everything that came from another instance. */
export const REMOTE_ORIGIN = Symbol('remote instance');

/** Applies the updates in one transaction; sends what was new to local peers. Returns whether anything was. */
export function applyRemoteUpdates(room: Room, updates: readonly Uint8Array[]): boolean {
  let delta: Uint8Array | null = null;
  const capture = (u: Uint8Array): void => {
    delta = u;
  };
  room.doc.on('update', capture);
  try {
    Y.transact(room.doc, () => {
      for (const update of updates) Y.applyUpdate(room.doc, update, REMOTE_ORIGIN);
    }, REMOTE_ORIGIN);
  } finally {
    room.doc.off('update', capture);
  }
  if (delta === null) return false;
  const changed: Uint8Array = delta;
  const frame = encodeRelayMessage((e) => writeRelayUpdate(e, changed));
  for (const peer of room.conns.keys()) peer.send(frame);
  return true;
}

/** Applies an awareness update and forwards its frame, unchanged, to local peers. */
export function applyRemoteAwareness(room: Room, update: Uint8Array, frame: Uint8Array): void {
  awarenessProtocol.applyAwarenessUpdate(room.awareness, update, REMOTE_ORIGIN);
  for (const peer of room.conns.keys()) peer.send(frame);
}

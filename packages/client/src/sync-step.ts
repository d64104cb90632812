/**
 * Reads which sync message a y-websocket / y-webrtc frame carries (the message types are the
 * same on both; y-webrtc sends WebRTC data unencrypted, even with a password), and writes our
 * own sync step 1.
 *
 * Used for two things: y-webrtc sets its own `WebrtcConn.synced` only while the room as a whole
 * is not synced, and a room with no connection counts as synced (after any peer closes, no later
 * peer is ever marked synced), so we spot the sync step 2 ourselves; and the pending count
 * (pending.ts) matches replies to the sync step 1 we send.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { messageYjsSyncStep1, messageYjsSyncStep2, writeSyncStep1 } from 'y-protocols/sync';
import { RelayMessageType } from '@sync-suite/shared';

export type SyncKind = 'step1' | 'step2' | 'other';

export function syncKind(data: Uint8Array): SyncKind {
  try {
    const decoder = decoding.createDecoder(data);
    if (decoding.readVarUint(decoder) !== RelayMessageType.Sync) return 'other';
    const kind = decoding.readVarUint(decoder);
    return kind === messageYjsSyncStep1 ? 'step1' : kind === messageYjsSyncStep2 ? 'step2' : 'other';
  } catch {
    return 'other';
  }
}

/** A sync message (step 1, step 2 or update): one that carries or asks for the document, not presence. */
export function isSyncMessage(data: Uint8Array): boolean {
  try {
    return decoding.readVarUint(decoding.createDecoder(data)) === RelayMessageType.Sync;
  } catch {
    return false;
  }
}

export function isSyncStep2(data: Uint8Array): boolean {
  return syncKind(data) === 'step2';
}

/** A sync step 1 frame: our state vector, which the other side answers with a sync step 2. */
export function syncStep1Frame(doc: Y.Doc): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, RelayMessageType.Sync);
  writeSyncStep1(encoder, doc);
  return encoding.toUint8Array(encoder);
}

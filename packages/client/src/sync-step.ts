/**
 * Recognises the sync step 2 message on a y-webrtc data channel. y-webrtc sets its own
 * `WebrtcConn.synced` only while the room as a whole is not synced, and a room with no
 * connection counts as synced: after any peer closes, no later peer is ever marked synced.
 * So we read the message ourselves (y-webrtc sends WebRTC data unencrypted, even with a password;
 * its message types are y-websocket's).
 */
import * as decoding from 'lib0/decoding';
import { messageYjsSyncStep2 } from 'y-protocols/sync';
import { RelayMessageType } from '@sync-suite/shared';

export function isSyncStep2(data: Uint8Array): boolean {
  try {
    const decoder = decoding.createDecoder(data);
    return decoding.readVarUint(decoder) === RelayMessageType.Sync && decoding.readVarUint(decoder) === messageYjsSyncStep2;
  } catch {
    return false;
  }
}

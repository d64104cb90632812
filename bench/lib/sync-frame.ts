/** A y-websocket sync message: message type 0 (sync), then the sync step (0, 1, 2 = update) and its payload. */
import * as encoding from 'lib0/encoding';

export function syncFrame(type: number, payload: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 0);
  encoding.writeVarUint(e, type);
  encoding.writeVarUint8Array(e, payload);
  return encoding.toUint8Array(e);
}

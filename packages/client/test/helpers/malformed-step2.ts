/**
 * Sync step 2 frames with broken framing, each with the words its drop is reported with: what a
 * hostile relay (relay-malformed-step2) or WebRTC peer (webrtc-malformed-step2) sends so that
 * y-protocols swallows it and the device would take the sender for synced.
 */
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';

/** message sync, sync step 2, then `payload` as is (normally a varUint8Array holding the update) */
export const step2Frame = (payload: Uint8Array): Uint8Array => Uint8Array.from([0, 1, ...payload]);

const update = (() => {
  const d = new Y.Doc();
  d.getText('t').insert(0, 'never applied');
  return Y.encodeStateAsUpdate(d);
})();

/** the update as a well-formed step 2 payload (its length, then its bytes) */
export const withLength = encoding.encode((e) => encoding.writeVarUint8Array(e, update));

export const MALFORMED_STEP2_CASES: ReadonlyArray<{ name: string; frame: Uint8Array; report: RegExp }> = [
  // claims 5 bytes, 1 follows
  { name: 'a length past the end of the frame', frame: step2Frame(Uint8Array.from([5, 0])), report: /runs past the end of the frame/ },
  { name: 'an empty payload (the length itself missing)', frame: step2Frame(new Uint8Array(0)), report: /cut short/ },
  { name: 'bytes after the update', frame: step2Frame(Uint8Array.from([...withLength, 0xff, 0x01])), report: /2 bytes follow the update/ },
];

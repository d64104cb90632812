/**
 * The y-webrtc password of a sealed room. y-webrtc encrypts every signaling payload (announce,
 * SDP, ICE) with AES-GCM under a key it derives from its `password` (PBKDF2 with the room name as
 * salt, node_modules/y-webrtc/src/crypto.js) and ignores payloads it cannot decrypt. Without the
 * password nobody can read an offer's DTLS fingerprint nor make an answer a keyed device accepts,
 * so no data channel (which y-webrtc itself never encrypts) opens to a device without the room key:
 * not to a token holder, not to whoever runs /signal.
 *
 *   password := hex(HKDF-SHA256(ikm = key, salt = none,
 *                               info = "sync-suite/webrtc-password/v1" • 0x00 • utf8(room) • 0x00 • utf8(appPassword)))
 *
 * The label keeps this key apart from every other use of the room key; the room name makes each
 * room's signaling key its own; the app's `password` option, when given, is mixed in (devices need
 * both to meet over WebRTC). Only the current `key` is used: devices on different current keys
 * (mid-rotation) cannot read each other's signaling and meet on the sealed relay instead.
 */
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

const LABEL = 'sync-suite/webrtc-password/v1';
const KEY_BYTES = 32;

export function sealedWebrtcPassword(room: string, key: Uint8Array, appPassword = ''): string {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw new TypeError(`sealed.key must be a Uint8Array of ${KEY_BYTES} bytes`);
  const info = new TextEncoder().encode(`${LABEL}\u0000${room}\u0000${appPassword}`);
  return bytesToHex(hkdf(sha256, key, undefined, info, 32));
}

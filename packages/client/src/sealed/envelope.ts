/**
 * Sealing and opening sealed-room envelopes (docs/PROTOCOL-sealed.md, "Envelope"):
 *   envelope := version(1) • kind • keyId(4) • nonce(24) • XChaCha20-Poly1305 ciphertext
 * with the room name, version, kind and key id bound as associated data, so an envelope opens
 * only in its own room and as its own kind; a snapshot also binds the seq it covers, so a server
 * cannot re-serve an old snapshot under a newer `covers` (a device would skip entries). Random 24-byte nonces: no counter to keep across
 * devices and restarts. The key id picks the key after a rotation: writes use `key`, reads try
 * every key whose id matches (`key` and `previousKeys`).
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/ciphers/utils.js';
import { sha256 } from '@noble/hashes/sha2.js';

export const ENVELOPE_VERSION = 1;
/** CarryingSnapshot: a snapshot that also carries entries its device could not apply (carried.ts) */
export const EnvelopeKind = { Update: 1, Snapshot: 2, Presence: 3, CarryingSnapshot: 4 } as const;
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind];

const KEY_BYTES = 32;
const KEY_ID_BYTES = 4;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
const HEADER_BYTES = 2 + KEY_ID_BYTES;
/** a snapshot's covers in its associated data: u64 big-endian */
const COVERS_BYTES = 8;
const MIN_BYTES = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;
const text = new TextEncoder();
const KEY_ID_LABEL = text.encode('sync-suite sealed key id v1');
const AAD_LABEL = text.encode('sync-suite sealed v1');

export type OpenResult = { ok: true; plaintext: Uint8Array } | { ok: false; reason: 'malformed' | 'unknown key' | 'does not open' };

interface RoomKey {
  id: Uint8Array;
  key: Uint8Array;
}

export class SealedKeys {
  private readonly write: RoomKey;
  private readonly read: RoomKey[];
  private readonly room: Uint8Array;

  constructor(room: string, key: Uint8Array, previousKeys: readonly Uint8Array[] = []) {
    this.room = text.encode(room);
    this.write = roomKey(key, 'sealed.key');
    this.read = [this.write, ...previousKeys.map((k, i) => roomKey(k, `sealed.previousKeys[${i}]`))];
  }

  /** `covers`: for a snapshot, the seq it covers (bound as associated data); ignored otherwise */
  seal(kind: EnvelopeKind, plaintext: Uint8Array, covers = 0): Uint8Array {
    const out = new Uint8Array(HEADER_BYTES + NONCE_BYTES + plaintext.length + TAG_BYTES);
    out[0] = ENVELOPE_VERSION;
    out[1] = kind;
    out.set(this.write.id, 2);
    const nonce = randomBytes(NONCE_BYTES);
    out.set(nonce, HEADER_BYTES);
    const sealed = xchacha20poly1305(this.write.key, nonce, this.aad(out.subarray(0, HEADER_BYTES), kind, covers)).encrypt(plaintext);
    out.set(sealed, HEADER_BYTES + NONCE_BYTES);
    return out;
  }

  /** Opens an envelope of this kind from this room (a snapshot: covering `covers`); never throws. */
  open(kind: EnvelopeKind, envelope: Uint8Array, covers = 0): OpenResult {
    if (envelope.length < MIN_BYTES || envelope[0] !== ENVELOPE_VERSION || envelope[1] !== kind) return { ok: false, reason: 'malformed' };
    const header = envelope.subarray(0, HEADER_BYTES);
    const id = envelope.subarray(2, HEADER_BYTES);
    const nonce = envelope.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
    const sealed = envelope.subarray(HEADER_BYTES + NONCE_BYTES);
    const candidates = this.read.filter((k) => equal(k.id, id));
    if (candidates.length === 0) return { ok: false, reason: 'unknown key' };
    for (const k of candidates) {
      try {
        return { ok: true, plaintext: xchacha20poly1305(k.key, nonce, this.aad(header, kind, covers)).decrypt(sealed) };
      } catch {
        // the tag did not verify with this key: try the next one with the same id
      }
    }
    return { ok: false, reason: 'does not open' };
  }

  private aad(header: Uint8Array, kind: EnvelopeKind, covers: number): Uint8Array {
    const tail = kind === EnvelopeKind.Snapshot || kind === EnvelopeKind.CarryingSnapshot ? COVERS_BYTES : 0;
    const out = new Uint8Array(AAD_LABEL.length + 1 + this.room.length + 1 + header.length + tail);
    out.set(AAD_LABEL, 0);
    out.set(this.room, AAD_LABEL.length + 1);
    out.set(header, AAD_LABEL.length + 1 + this.room.length + 1);
    if (tail > 0) new DataView(out.buffer).setBigUint64(out.length - COVERS_BYTES, BigInt(covers));
    return out;
  }
}

/** The kind byte of an envelope (undefined when too short to have one); the server's frames are not trusted to match it. */
export function envelopeKindOf(envelope: Uint8Array): number | undefined {
  return envelope.length > 1 ? envelope[1] : undefined;
}

/** The key id: the first bytes of SHA-256(label • key). */
export function keyId(key: Uint8Array): Uint8Array {
  const input = new Uint8Array(KEY_ID_LABEL.length + key.length);
  input.set(KEY_ID_LABEL, 0);
  input.set(key, KEY_ID_LABEL.length);
  return sha256(input).subarray(0, KEY_ID_BYTES);
}

function roomKey(key: unknown, name: string): RoomKey {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw new TypeError(`${name} must be a Uint8Array of ${KEY_BYTES} bytes`);
  return { id: keyId(key), key: Uint8Array.from(key) };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

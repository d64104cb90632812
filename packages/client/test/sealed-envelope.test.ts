import { describe, expect, it } from 'vitest';
import { EnvelopeKind, SealedKeys, keyId } from '../src/sealed/envelope.js';

const key = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const ROOM = 'acme-conversation-1';
const msg = new TextEncoder().encode('hello, sealed world');

describe('sealed envelopes', () => {
  it('opens what it sealed, and hides the plaintext', () => {
    const k = new SealedKeys(ROOM, key(1));
    const env = k.seal(EnvelopeKind.Update, msg);
    expect(env.length).toBe(2 + 4 + 24 + msg.length + 16);
    expect(Buffer.from(env).includes(Buffer.from('sealed'))).toBe(false);
    expect(k.open(EnvelopeKind.Update, env)).toEqual({ ok: true, plaintext: msg });
  });

  it('uses a fresh nonce every time', () => {
    const k = new SealedKeys(ROOM, key(1));
    expect(Buffer.from(k.seal(EnvelopeKind.Update, msg)).equals(Buffer.from(k.seal(EnvelopeKind.Update, msg)))).toBe(false);
  });

  it('refuses a wrong key, another room, another kind, and any flipped byte', () => {
    const env = new SealedKeys(ROOM, key(1)).seal(EnvelopeKind.Update, msg);
    expect(new SealedKeys(ROOM, key(2)).open(EnvelopeKind.Update, env)).toEqual({ ok: false, reason: 'unknown key' });
    expect(new SealedKeys('acme-conversation-2', key(1)).open(EnvelopeKind.Update, env)).toEqual({ ok: false, reason: 'does not open' });
    const k = new SealedKeys(ROOM, key(1));
    expect(k.open(EnvelopeKind.Snapshot, env).ok).toBe(false);
    // the kind byte rewritten to pass the kind check: the associated data no longer matches
    const asSnapshot = Uint8Array.from(env);
    asSnapshot[1] = EnvelopeKind.Snapshot;
    expect(k.open(EnvelopeKind.Snapshot, asSnapshot)).toEqual({ ok: false, reason: 'does not open' });
    for (let i = 6; i < env.length; i++) {
      const bad = Uint8Array.from(env);
      bad[i] = (bad[i] as number) ^ 1;
      expect(k.open(EnvelopeKind.Update, bad).ok, `byte ${i}`).toBe(false);
    }
    expect(k.open(EnvelopeKind.Update, env.subarray(0, 20))).toEqual({ ok: false, reason: 'malformed' });
  });

  it('after a rotation writes with the new key and still reads the previous one', () => {
    const old = new SealedKeys(ROOM, key(1)).seal(EnvelopeKind.Update, msg);
    const rotated = new SealedKeys(ROOM, key(2), [key(1)]);
    expect(rotated.open(EnvelopeKind.Update, old)).toEqual({ ok: true, plaintext: msg });
    const fresh = rotated.seal(EnvelopeKind.Update, msg);
    expect(Buffer.from(fresh.subarray(2, 6)).equals(Buffer.from(keyId(key(2))))).toBe(true);
    expect(new SealedKeys(ROOM, key(1)).open(EnvelopeKind.Update, fresh).ok).toBe(false);
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => new SealedKeys(ROOM, new Uint8Array(16))).toThrow(TypeError);
    expect(() => new SealedKeys(ROOM, key(1), ['nope' as unknown as Uint8Array])).toThrow(/previousKeys\[0\]/);
  });
  it('binds a snapshot to the seq it covers: a server cannot re-serve an old snapshot as a newer one', () => {
    const k = new SealedKeys(ROOM, key(1));
    const snap = k.seal(EnvelopeKind.Snapshot, msg, 10);
    expect(k.open(EnvelopeKind.Snapshot, snap, 10)).toEqual({ ok: true, plaintext: msg });
    expect(k.open(EnvelopeKind.Snapshot, snap, 20)).toEqual({ ok: false, reason: 'does not open' });
    expect(k.open(EnvelopeKind.Snapshot, snap, 0)).toEqual({ ok: false, reason: 'does not open' });
  });
});

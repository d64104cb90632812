/**
 * A hostile writer and the compaction it must not stop, for the sealed-room tests on stored junk
 * (sealed-junk-compaction, sealed-carry-oversized): the server's log counts, a push that waits
 * for its ack, a raw socket with a write token storing one envelope no device can open, a
 * writer under a rotated key, and pushes until a snapshot covers a given seq.
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import type { WebSocket as WsSocket } from 'ws';
import { encodeSealedMessage, readSealedServerMessage, writeSealedHello, writeSealedUpdate } from '@sync-suite/shared';
import { testToken, type ServerPerTest, type TestServer } from '../../../../test/helpers/server.js';
import { sealedRegistry } from '../../../../apps/server/src/routes/sealed/index.js';
import { device, push, settled, when, type Device } from './store-device.js';

const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket & (new (url: string) => WsSocket);

export async function stats(server: TestServer, room: string): Promise<{ head: number; snapshotCovers: number; entries: number }> {
  const store = sealedRegistry(server.app)?.store;
  if (!store) throw new Error('no sealed store');
  return store.stats(room);
}

/** One entry per push, each acked before the next, so the snapshot request comes when expected. */
/**
 * Two keys, before and after a rotation, and bob, who got the newer one first: he writes one
 * entry under it ('from bob under k2', acked) and leaves. Returns the keys and that entry's seq.
 */
export async function bobUnderNewerKey(scope: ServerPerTest, server: TestServer, room: string): Promise<{ k1: Uint8Array; k2: Uint8Array; bobSeq: number }> {
  const [k1, k2] = [randomBytes(32), randomBytes(32)];
  const b = await device(scope, server.url, room, { key: k2, previousKeys: [k1], sub: 'bob' });
  await pushAcked(b, 'from bob under k2');
  const bobSeq = (await stats(server, room)).head;
  await b.stop();
  return { k1, k2, bobSeq };
}

export async function pushAcked(d: Device, text: string): Promise<void> {
  push(d, text);
  await when(() => settled(d) && d.p.sealedRelay?.pending === 0, `${text} acked`);
}

/**
 * Stores one envelope of `bytes` through a raw socket with a write token: version 1, kind update,
 * then `keyId` (or random bytes: an unknown key id); resolves with its seq.
 */
export async function storeJunk(server: TestServer, room: string, opts: { bytes?: number; keyId?: Uint8Array } = {}): Promise<number> {
  const atk = new WebSocket(`${server.wsUrl}/sealed/${room}?token=${await testToken('mallory', ['test-*'])}`);
  try {
    const seq = new Promise<number>((resolve, reject) => {
      atk.on('open', () => atk.send(encodeSealedMessage((e) => writeSealedHello(e, 0, 0))));
      atk.on('message', (data: Buffer) => {
        const r = readSealedServerMessage(new Uint8Array(data));
        if (!r.ok) return;
        if (r.message.type === 'caught-up') {
          const junk = randomBytes(opts.bytes ?? 64);
          junk.set([1, 1, ...(opts.keyId ?? [])]);
          atk.send(encodeSealedMessage((e) => writeSealedUpdate(e, 1, junk)));
        }
        if (r.message.type === 'ack') resolve(r.message.seq);
      });
      atk.on('close', (code) => reject(new Error(`mallory closed ${code}`)));
    });
    return await Promise.race([seq, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('junk not stored in 10 s')), 10_000))]);
  } finally {
    atk.close();
  }
}

/** Pushes until a snapshot covers `past` and the log is back under `snapshotAfter` entries (bounded). */
export async function compactPast(server: TestServer, room: string, d: Device, past: number, prefix: string, snapshotAfter: number): Promise<string[]> {
  const pushed: string[] = [];
  for (let i = 0; i < 3 * snapshotAfter; i++) {
    const s = await stats(server, room);
    if (s.snapshotCovers > past && s.entries < snapshotAfter) return pushed;
    const text = `${prefix} ${i}`;
    await pushAcked(d, text);
    pushed.push(text);
  }
  const s = await stats(server, room);
  throw new Error(`no snapshot past ${past}: snapshot covers ${s.snapshotCovers} with ${s.entries} entries left (head ${s.head})`);
}

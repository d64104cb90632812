/**
 * What no MESSAGE-INTEGRITY covers is never read: attributes after it (RFC 5389 section 15.4: all
 * but FINGERPRINT are ignored) and bytes past the message's declared length. node-turn reads
 * both (node_modules/node-turn/lib/message.js walks the whole datagram), so whoever can send from
 * a client's address (on the path, or spoofing it) could take one of its signed requests and add
 * what it likes: LIFETIME 0 to a Refresh, another peer to a CreatePermission.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { A, u32 } from './helpers/stun-client.js';
import { openStunClient, turnPerTest } from './helpers/turn.js';

const scope = turnPerTest();
afterEach(() => scope.close());

const attribute = (type: number, value: Buffer) => Buffer.concat([Buffer.from([type >> 8, type & 0xff, value.length >> 8, value.length & 0xff]), value]);

describe('a signed request with something after its MESSAGE-INTEGRITY', () => {
  for (const where of ['counted in the message length', 'past the message length'] as const) {
    it(`is not acted on: a LIFETIME 0 ${where} does not release the allocation`, async () => {
      const t = await scope.start();
      const c = await openStunClient(scope, t.creds('alice'));
      expect((await c.allocate()).cls).toBe(2);
      const sent: Buffer[] = [];
      const send = c.socket.send.bind(c.socket) as (msg: Buffer, port: number, address: string) => void;
      (c.socket as unknown as { send: typeof send }).send = (msg, port, address) => {
        sent.push(Buffer.from(msg));
        send(msg, port, address);
      };
      expect((await c.refresh()).cls).toBe(2);
      const signed = sent.at(-1)!;
      const tail = attribute(A.LIFETIME, u32(0));
      const replay = Buffer.concat([signed, tail]);
      if (where === 'counted in the message length') replay.writeUInt16BE(signed.readUInt16BE(2) + tail.length, 2);
      send(replay, t.turn.port, '127.0.0.1');
      // processed in order: the allocation is still there for the next Refresh
      const after = await c.refresh();
      expect({ cls: after.cls, code: after.code, allocations: await t.metric('turn_allocations') }).toEqual({ cls: 2, code: undefined, allocations: 1 });
    });
  }
});

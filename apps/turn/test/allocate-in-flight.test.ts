/**
 * An Allocate arriving on a 5-tuple whose first Allocate is still binding its relay port: node-turn
 * registers an allocation only once its port is bound, so both were granted and the first, replaced,
 * was out of reach of any Refresh (its port and quota slot held for its whole lifetime).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { A, CLASS, METHOD, encode, transport } from './helpers/stun-client.js';
import { openStunClient, turnPerTest } from './helpers/turn.js';

const scope = turnPerTest();
afterEach(() => scope.close());

describe('Allocate while an Allocate is in flight on the same 5-tuple', () => {
  it('answers the second 437 and leaves one allocation, which Refresh 0 releases', async () => {
    const t = await scope.start({ TURN_USER_QUOTA: '5' });
    const c = await openStunClient(scope, t.creds('alice'));
    expect((await c.refresh()).code).toBe(437); // fetches realm and nonce; nothing allocated yet
    const [first, second] = await Promise.all([c.allocate(), c.allocate()]);
    expect([first.cls, second.code]).toEqual([2, 437]);
    expect(await t.metric('turn_allocations')).toBe(1);
    expect((await c.refresh(0)).cls).toBe(2);
    expect(await t.metric('turn_allocations')).toBe(0);
  });

  it('a retransmission (same transaction ID) in flight is answered once, by the Allocate it repeats', async () => {
    const t = await scope.start();
    const { username, credential } = t.creds('bob');
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    try {
      const answers: Buffer[] = [];
      let notify: (() => void) | undefined;
      socket.on('message', (m: Buffer) => {
        answers.push(m);
        notify?.();
      });
      const next = (n: number) => new Promise<void>((resolve) => {
        notify = () => answers.length >= n && resolve();
        notify();
      });
      socket.send(encode(METHOD.ALLOCATE, CLASS.REQUEST, randomBytes(12), [[A.REQUESTED_TRANSPORT, transport()]]), t.turn.port, '127.0.0.1');
      await next(1);
      const attr = (m: Buffer, type: number) => {
        for (let o = 20; o + 4 <= m.length; o += 4 + m.readUInt16BE(o + 2) + ((4 - (m.readUInt16BE(o + 2) % 4)) % 4)) {
          if (m.readUInt16BE(o) === type) return m.subarray(o + 4, o + 4 + m.readUInt16BE(o + 2));
        }
        throw new Error(`no attribute ${type}`);
      };
      const realm = attr(answers[0]!, A.REALM);
      const nonce = attr(answers[0]!, A.NONCE);
      const key = createHash('md5').update(`${username}:${realm.toString()}:${credential}`).digest();
      const txid = randomBytes(12);
      const request = encode(METHOD.ALLOCATE, CLASS.REQUEST, txid, [[A.REQUESTED_TRANSPORT, transport()], [A.USERNAME, Buffer.from(username)], [A.REALM, realm], [A.NONCE, nonce]], key);
      socket.send(request, t.turn.port, '127.0.0.1');
      socket.send(request, t.turn.port, '127.0.0.1');
      await next(2);
      // a later retransmission, once allocated, is answered from the allocation (node-turn); it is the barrier here
      socket.send(request, t.turn.port, '127.0.0.1');
      await next(3);
      const classes = answers.slice(1).map((m) => ({ txid: m.subarray(8, 20).equals(txid), cls: ((m.readUInt16BE(0) >> 4) & 1) | ((m.readUInt16BE(0) >> 7) & 2) }));
      expect(classes).toEqual([{ txid: true, cls: 2 }, { txid: true, cls: 2 }]);
      expect(await t.metric('turn_allocations')).toBe(1);
    } finally {
      socket.close();
    }
  });
});

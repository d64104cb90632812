/**
 * 0.0.0.0 and :: as peers: the kernel delivers a datagram sent to the unspecified address to the
 * sending host itself (Linux: to the relay socket's own address), so a relay toward it reaches the
 * TURN host's own services and listener, whatever TURN_DENY_PEERS says.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { openStunClient, turnPerTest } from './helpers/turn.js';
import { createPeerFilter } from '../src/peer-filter.js';

const scope = turnPerTest();
afterEach(() => scope.close());

describe('the unspecified address as a peer', () => {
  it('is denied even when TURN_DENY_PEERS leaves out the unspecified group: nothing reaches a loopback service', async () => {
    // an operator's list naming loopback (and not "unspecified"): loopback must stay unreachable
    const t = await scope.start({ TURN_DENY_PEERS: 'loopback,private' });
    const service = createSocket('udp4');
    service.bind(0, '127.0.0.1');
    await once(service, 'listening');
    const got: Buffer[] = [];
    service.on('message', (m: Buffer) => got.push(m));
    try {
      const c = await openStunClient(scope, t.creds('alice'));
      expect((await c.allocate()).cls).toBe(2);
      expect((await c.permit('127.0.0.1')).code).toBe(403);
      const permitted = await c.permit('0.0.0.0');
      c.sendIndication('0.0.0.0', service.address().port, Buffer.from('to a loopback-only service'));
      // a barrier after the indication: the data plane handled it before this answer
      expect((await c.refresh()).cls).toBe(2);
      // a relayed datagram was sent before that answer; one of our own sent now arrives after it
      const barrier = createSocket('udp4');
      const arrived = new Promise<void>((resolve) => service.on('message', (m: Buffer) => m.toString() === 'barrier' && resolve()));
      barrier.send('barrier', service.address().port, '127.0.0.1');
      await arrived;
      barrier.close();
      expect({ permit: permitted.code ?? permitted.cls, reached: got.filter((m) => m.toString() !== 'barrier').map(String) }).toEqual({ permit: 403, reached: [] });
    } finally {
      service.close();
    }
  });

  it('every spelling is denied by any list, and is never a peer of our own ports', () => {
    for (const list of [['loopback', 'private'], ['none'], ['private']]) {
      const f = createPeerFilter(list, false, { addresses: ['203.0.113.7'], listenPort: 3478, minPort: 49152, maxPort: 65535 });
      for (const a of ['0.0.0.0', '0.1.2.3', '::', '0:0:0:0:0:0:0:0', '::ffff:0.0.0.0', '0:0:0:0:0:ffff:0:0', '::0.0.0.0']) {
        expect({ list, a, denied: f.denies(a), port: f.deniesPort(a, 53) }).toEqual({ list, a, denied: true, port: true });
      }
    }
  });
});

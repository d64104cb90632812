/**
 * LiveSockets' indexes hold a key's one socket directly and a Set from the second on
 * (auth/live-sockets.ts): revocation and expiry reach exactly the sockets registered under a
 * key, as sockets come and go past one and two.
 */
import type { ServerMetrics } from '@sync-suite/shared/node';
import { describe, expect, it } from 'vitest';
import { LiveSockets, type LiveSocket } from '../src/auth/live-sockets.js';

const metrics = { tokenClosures: { inc: () => undefined } } as unknown as ServerMetrics;

function socket(sub: string, jti: string, exp: number, closed: string[]): LiveSocket {
  return { sub, jti, exp, endpoint: 'signal', closeForToken: () => closed.push(jti) };
}

describe('LiveSockets', () => {
  it('revokes by sub and by jti the sockets registered now, as a key goes from one socket to several and back', () => {
    const closed: string[] = [];
    const live = new LiveSockets({ graceSeconds: 0, metrics, now: () => 0 });
    const [a, b, c] = ['a', 'b', 'c'].map((jti) => socket('u1', jti, 3600, closed));
    live.add(a!);
    live.add(b!); // the sub's second socket
    live.remove(a!); // back to one
    expect(live.revoke({ jti: 'a' })).toBe(0);
    live.add(c!); // two again
    live.remove(b!);
    live.remove(c!); // none
    live.add(b!);
    expect(live.revoke({ sub: 'u1' })).toBe(1);
    expect(closed).toEqual(['b']);
    live.add(a!);
    live.add(c!);
    expect(live.revoke({ sub: 'u1' })).toBe(2);
    expect(closed.sort()).toEqual(['a', 'b', 'c']);
    expect(live.size).toBe(0);
    live.stop();
  });

  it('closes on expiry the sockets of a deadline second, one or several', () => {
    const closed: string[] = [];
    let ms = 0;
    const live = new LiveSockets({ graceSeconds: 0, metrics, now: () => ms });
    const first = [socket('u1', 'a', 10, closed), socket('u2', 'b', 10, closed), socket('u3', 'c', 10, closed)];
    const later = socket('u4', 'd', 20, closed);
    for (const s of [...first, later]) live.add(s);
    live.remove(first[1]!);
    live.remove(first[2]!); // the second's bucket is down to one socket
    ms = 10_000;
    live.sweep();
    expect(closed).toEqual(['a']);
    ms = 20_000;
    live.sweep();
    expect(closed).toEqual(['a', 'd']);
    live.stop();
  });
  // RFC 7519 allows a NumericDate with a fraction; verifyRoomToken accepts one (an issuer writing
  // Date.now() / 1000 + ttl). Such a socket must still be closed once exp + grace has passed.
  it('closes on expiry a socket whose exp has a fraction', () => {
    const closed: string[] = [];
    let ms = 0;
    const live = new LiveSockets({ graceSeconds: 30, metrics, now: () => ms });
    live.add(socket('u1', 'a', 10.5, closed));
    ms = 40_000;
    live.sweep();
    expect(closed).toEqual([]);
    ms = 41_000;
    live.sweep();
    expect(closed).toEqual(['a']);
    expect(live.size).toBe(0);
    live.stop();
  });
});

/**
 * TokenGate's `url`: the attempt the gate let start reads the URL with its fresh token; any other
 * read (y-webrtc's disconnect() looks its signaling connection up by `url` in a process-wide map)
 * gets the URL the owner was made with, and changes nothing.
 */
import { describe, expect, it, vi } from 'vitest';
import { TokenGate, type GatedSocketOwner } from '../src/token-gate.js';

const withToken = (t: string | undefined): string => `ws://s/signal?token=${t ?? ''}`;

/** Like lib0's WebsocketClient: `url` and `shouldConnect` are its own data properties. */
function ownOwner(): GatedSocketOwner & { url: string; shouldConnect: boolean; connect: ReturnType<typeof vi.fn<() => void>> } {
  return { ws: null, url: withToken('first'), shouldConnect: true, connect: vi.fn<() => void>() };
}

/** Like y-websocket's WebsocketProvider: `url` is a getter on its prototype. */
class ProtoOwner implements GatedSocketOwner {
  ws: unknown = null;
  shouldConnect = false;
  room = 'r1';
  connect = vi.fn<() => void>();
  get url(): string {
    return `ws://s/relay/${this.room}`;
  }
}

describe('TokenGate url', () => {
  it('read with no attempt starting: the owner’s own URL, no attempt reported', async () => {
    const owner = ownOwner();
    const onAttempt = vi.fn();
    const gate = new TokenGate(owner, { getToken: () => Promise.resolve('next'), url: withToken, onTokenError: vi.fn(), onAttempt }, true);
    expect(owner.url).toBe(withToken('first'));
    expect(owner.url).toBe(withToken('first'));
    await Promise.resolve();
    expect(onAttempt).not.toHaveBeenCalled();
    gate.close();
    expect(owner.url).toBe(withToken('first'));
    await Promise.resolve();
    expect(onAttempt).not.toHaveBeenCalled();
  });

  it('the attempt the gate starts reads its fresh token once; reads after it get the owner’s URL', async () => {
    const owner = ownOwner();
    const onAttempt = vi.fn();
    const gate = new TokenGate(owner, { getToken: () => Promise.resolve('fresh'), url: withToken, onTokenError: vi.fn(), onAttempt }, false);
    gate.start();
    await vi.waitFor(() => expect(owner.connect).toHaveBeenCalledTimes(1));
    // What setupWS does: shouldConnect, then url.
    expect(owner.shouldConnect).toBe(true);
    expect(owner.url).toBe(withToken('fresh'));
    await Promise.resolve();
    expect(onAttempt).toHaveBeenCalledTimes(1);
    expect(owner.url).toBe(withToken('first'));
    gate.close();
  });

  it('an owner whose url is a prototype getter: read through it', () => {
    const owner = new ProtoOwner();
    const gate = new TokenGate(owner, { getToken: () => Promise.resolve('t'), url: withToken, onTokenError: vi.fn() }, false);
    owner.room = 'r2';
    expect(owner.url).toBe('ws://s/relay/r2');
    gate.close();
  });
});

describe('TokenGate close', () => {
  it('a refresh whose getToken() fails after close() arms no timer (nothing left running after destroy)', async () => {
    vi.useFakeTimers();
    try {
      const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
      const token = `${b64({ alg: 'HS256' })}.${b64({ exp: Math.floor(Date.now() / 1000) + 60 })}.sig`;
      let reject: (err: Error) => void = () => undefined;
      const getToken = vi.fn(() => new Promise<string>((_, no) => (reject = no)));
      const owner = { ws: { readyState: 1 }, url: withToken('first'), shouldConnect: true, connect: vi.fn<() => void>() };
      const onTokenError = vi.fn();
      const gate = new TokenGate(owner, { getToken, url: withToken, onTokenError, refresh: { marginMs: 10_000, onDue: vi.fn() } }, true);
      gate.armRefresh(token);
      await vi.advanceTimersByTimeAsync(50_000);
      expect(getToken).toHaveBeenCalledTimes(1);
      gate.close();
      reject(new Error('network down'));
      await vi.advanceTimersByTimeAsync(0);
      expect(onTokenError).toHaveBeenCalledTimes(1);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

/** The pure parts: relay policy table, status, endpoints, token expiry, /turn-credentials parsing. */
import { describe, expect, it } from 'vitest';
import { decideRelay, type PolicyInput } from '../src/relay-policy.js';
import { statusOf } from '../src/status.js';
import { endpointsFor, withPath, withQuery } from '../src/endpoints.js';
import { tokenExpiresAt } from '../src/token-expiry.js';
import { parseTurnCredentials } from '../src/ice-servers.js';

const base: PolicyInput = {
  relayWanted: false,
  signalingOpen: true,
  signalingFailed: false,
  others: 1,
  syncedPeers: 0,
  lostLastPeer: false,
  graceElapsed: false,
  holdElapsed: false,
};

describe('decideRelay', () => {
  it.each<[string, Partial<PolicyInput>, { relay: boolean; timer: 'grace' | 'hold' | null }]>([
    ['a peer is on the topic, not reached yet: wait the grace period', {}, { relay: false, timer: 'grace' }],
    ['grace elapsed without a WebRTC peer: relay', { graceElapsed: true }, { relay: true, timer: null }],
    ['alone on the topic: relay at once (mailbox)', { others: 0 }, { relay: true, timer: null }],
    ['signaling failed: relay at once', { signalingOpen: false, signalingFailed: true }, { relay: true, timer: null }],
    ['signaling still connecting: wait the grace period', { signalingOpen: false, others: undefined }, { relay: false, timer: 'grace' }],
    ['lost the last WebRTC peer: relay at once', { lostLastPeer: true }, { relay: true, timer: null }],
    ['every peer reached over WebRTC: no relay', { syncedPeers: 1 }, { relay: false, timer: null }],
    ['one of two peers unreachable: grace, then relay', { others: 2, syncedPeers: 1 }, { relay: false, timer: 'grace' }],
    ['topic count unknown but a peer synced: covered', { others: undefined, syncedPeers: 1 }, { relay: false, timer: null }],
    ['relay on, WebRTC now covers everyone: hold', { relayWanted: true, syncedPeers: 1 }, { relay: true, timer: 'hold' }],
    ['relay on, hold elapsed: release', { relayWanted: true, syncedPeers: 1, holdElapsed: true }, { relay: false, timer: null }],
    ['relay on, signaling down though peers connected: keep', { relayWanted: true, syncedPeers: 1, signalingOpen: false }, { relay: true, timer: null }],
    ['relay on, not covered: keep', { relayWanted: true }, { relay: true, timer: null }],
  ])('%s', (_name, change, expected) => {
    expect(decideRelay({ ...base, ...change })).toEqual(expected);
  });
});

describe('statusOf', () => {
  const s = { destroyed: false, syncedPeers: 0, relaySynced: false, signalingOpen: false, relayOpen: false, failedSinceOpen: false };
  it.each<[string, Partial<typeof s>, string]>([
    ['starting', {}, 'connecting'],
    ['a synced WebRTC peer wins', { syncedPeers: 1, relaySynced: true }, 'webrtc'],
    ['relay synced', { relaySynced: true, relayOpen: true }, 'relay'],
    ['a socket open, not synced yet', { signalingOpen: true, failedSinceOpen: true }, 'connecting'],
    ['nothing open after failures', { failedSinceOpen: true }, 'offline'],
    ['destroyed', { destroyed: true, syncedPeers: 1 }, 'offline'],
  ])('%s', (_name, change, expected) => {
    expect(statusOf({ ...s, ...change })).toBe(expected);
  });
});

describe('endpointsFor', () => {
  it('maps schemes and keeps a path prefix', () => {
    expect(endpointsFor('https://sync.example.com/')).toEqual({ http: 'https://sync.example.com', ws: 'wss://sync.example.com' });
    expect(endpointsFor('ws://127.0.0.1:4444/sync')).toEqual({ http: 'http://127.0.0.1:4444/sync', ws: 'ws://127.0.0.1:4444/sync' });
  });
  it('refuses what is not an http(s) or ws(s) URL', () => {
    expect(() => endpointsFor('localhost:4444')).toThrow(/http\(s\)/);
    expect(() => endpointsFor('not a url')).toThrow(/not a URL/);
  });
});

describe('withQuery, withPath', () => {
  it('keeps a query the base already has and encodes values', () => {
    expect(withQuery('wss://proxy.example.com/sig?tenant=a', { room: 'app-chat-1', token: 'x.y+z' })).toBe('wss://proxy.example.com/sig?tenant=a&room=app-chat-1&token=x.y%2Bz');
    expect(withQuery('ws://h/signal?token=old', { token: 'new', skip: undefined })).toBe('ws://h/signal?token=new');
    expect(withPath('wss://h/sync/', 'relay')).toBe('wss://h/sync/relay');
    expect(withPath('ws://h', 'a b')).toBe('ws://h/a%20b');
  });
});

describe('tokenExpiresAt', () => {
  const jwt = (payload: unknown): string => `e30.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;
  it('reads exp in milliseconds, and nothing from what is not a JWT', () => {
    expect(tokenExpiresAt(jwt({ exp: 1700000000 }))).toBe(1700000000000);
    expect(tokenExpiresAt(jwt({ sub: 'x' }))).toBeUndefined();
    expect(tokenExpiresAt('garbage')).toBeUndefined();
    expect(tokenExpiresAt('a.!!!.b')).toBeUndefined();
  });
});

describe('parseTurnCredentials', () => {
  it('accepts the server shape and refuses others', () => {
    const ok = { iceServers: [{ urls: ['stun:h:3478'] }, { urls: ['turn:h:3478'], username: 'u', credential: 'c' }], ttl: 3600 };
    expect(parseTurnCredentials(ok)).toEqual(ok);
    expect(() => parseTurnCredentials({ iceServers: [{}], ttl: 1 })).toThrow(/iceServers/);
    expect(() => parseTurnCredentials({ iceServers: [], ttl: 0 })).toThrow(/ttl/);
    expect(() => parseTurnCredentials(null)).toThrow();
  });
});

describe('SyncProvider bad input', () => {
  it('refuses a malformed room name or server URL with a clear error, before connecting', async () => {
    const Y = await import('yjs');
    const { SyncProvider } = await import('../src/index.js');
    const doc = new Y.Doc();
    const WebSocket = class {};
    expect(() => new SyncProvider(doc, { serverUrl: 'http://127.0.0.1:1', room: 'no room type here', WebSocket })).toThrow(/invalid room name/);
    expect(() => new SyncProvider(doc, { serverUrl: 'localhost', room: 'app-conversation-1', WebSocket })).toThrow(/serverUrl/);
    doc.destroy();
  });
});

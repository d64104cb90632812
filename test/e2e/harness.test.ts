/**
 * Proof that the e2e harness works: scripts run in a loopback-only network namespace,
 * Chromium gathers host candidates there and connects two tabs over WebRTC, and the
 * bundle carries yjs, y-webrtc, y-websocket and the workspace packages.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { runInNetns } from '../helpers/netns.js';
import { datachannelWrtc } from '../helpers/wrtc.js';
import { connectPeers } from './fixtures/harness-wrtc-peers.js';

const SMOKE = 'test/e2e/fixtures/harness-smoke.ts';

/** pids of live processes whose command line contains `text` */
function processesWith(text: string): string[] {
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
      } catch {
        return false; // exited while we looked
      }
    });
}

describe('runInNetns', () => {
  it('runs the script in a loopback-only namespace and returns its result line', async () => {
    const result = await runInNetns(SMOKE, ['two words', '$HOME'], { timeoutMs: 20_000, env: { HARNESS_X: 'x' } });
    expect(result).toEqual({ args: ['two words', '$HOME'], interfaces: ['lo'], env: 'x', pid: 1 });
  });

  it('rejects with the stderr tail when the script fails', async () => {
    await expect(runInNetns(SMOKE, ['fail'], { timeoutMs: 20_000 })).rejects.toThrow(/exited with 1[\s\S]*asked to fail/);
  });

  it('kills the script and rejects on timeout', async () => {
    const marker = `hang-marker-${process.pid}-${Date.now()}`;
    await expect(runInNetns(SMOKE, ['hang', marker], { timeoutMs: 3_000 })).rejects.toThrow(/timed out after 3000 ms/);
    expect(processesWith(marker)).toEqual([]);
  });

  it('kills what the script left running (Chromium) and removes its TMPDIR', async () => {
    const marker = `browser-marker-${process.pid}-${Date.now()}`;
    const result = await runInNetns(SMOKE, ['leave-browser', marker], { timeoutMs: 30_000 });
    expect(result.tmpdir).toMatch(/sync-suite-netns-/);
    expect(existsSync(result.tmpdir)).toBe(false);
    expect(processesWith(marker)).toEqual([]);
  });

  it('rejects when the script prints no result line', async () => {
    await expect(runInNetns(SMOKE, ['silent'], { timeoutMs: 20_000 })).rejects.toThrow(/printed no RESULT line/);
  });
});

describe('Chromium in a namespace', () => {
  // one Chromium run feeds every assertion below
  let result: any;
  beforeAll(async () => {
    result = await runInNetns('test/e2e/fixtures/harness-browser-netns.ts', [], { timeoutMs: 50_000 });
  });

  it('connects two tabs over WebRTC on host candidates and syncs a Yjs update', () => {
    expect(result.interfaces).toEqual(['lo']);
    expect(result.health).toEqual({ status: 'ok' });
    expect(result.libs).toEqual({ yjs: true, webrtc: true, websocket: true, shared: true });
    expect(result.errors).toEqual([]);
    expect(result.text).toBe('hello over webrtc');
    for (const pair of [result.offererPair, result.answererPair]) {
      expect(pair.state).toBe('succeeded');
      expect(pair.local).toMatchObject({ candidateType: 'host', address: '127.0.0.1', protocol: 'udp' });
      expect(pair.remote).toMatchObject({ candidateType: 'host', address: '127.0.0.1' });
    }
    expect(result.offererPair.local.port).toBe(result.answererPair.remote.port);
  });

  it('scopes BroadcastChannel by origin: a page served on another port hears nothing', () => {
    // y-webrtc syncs same-origin tabs over BroadcastChannel; WebRTC tests serve each peer separately
    const { broadcast } = result;
    expect(broadcast.sameOrigin).toEqual(['from-a']);
    expect(broadcast.otherOrigin).toEqual([]);
  });
});

describe('Node-side WebRTC (the wrtc for simple-peer / y-webrtc peerOpts.wrtc)', () => {
  const LOOPBACK = ['127.0.0.1', '::1'];

  for (const impl of ['roam', 'datachannel'] as const) {
    it(`${impl}: two peers connect on host candidates inside a namespace`, async () => {
      const result = await runInNetns('test/e2e/fixtures/harness-wrtc-netns.ts', [impl], { timeoutMs: 30_000 });
      expect(result.interfaces).toEqual(['lo']);
      expect(result.text).toBe('hello from node');
      expect(result.candidateAddresses.length).toBeGreaterThan(0);
      for (const address of result.candidateAddresses) expect(LOOPBACK).toContain(address);
      expect(result.offererPair.local.candidateType).toBe('host');
      expect(result.answererPair.local.candidateType).toBe('host');
    });
  }

  it('datachannel: two peers connect on 127.0.0.1 only, outside any namespace', async () => {
    const result = await connectPeers(await datachannelWrtc(), 15_000);
    expect(result.text).toBe('hello from node');
    // bindAddress keeps gathering to loopback even though this machine has other interfaces
    expect(result.candidateAddresses).toEqual(['127.0.0.1']);
    expect(result.offererPair?.local).toMatchObject({ candidateType: 'host', address: '127.0.0.1' });
    expect(result.answererPair?.local).toMatchObject({ candidateType: 'host', address: '127.0.0.1' });
  });
});

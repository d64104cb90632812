/**
 * Two headless Chromium tabs, each a stock y-webrtc peer bundled into a small page and
 * served from its own origin, sync a Y.Text and awareness over WebRTC through our /signal
 * (auth on), inside a loopback-only network namespace.
 */
import { describe, expect, it } from 'vitest';
import { runInNetns } from '../helpers/netns.js';
import type { SignalingPeerReport } from './fixtures/signaling-page.js';

interface Result {
  interfaces: string[];
  reports: SignalingPeerReport[];
  publishes: number;
  origins: string[];
}

describe('stock y-webrtc in Chromium over WS /signal', () => {
  for (const mode of ['plain', 'password'] as const) {
    it(`two tabs sync over WebRTC (${mode} signaling)`, async () => {
      const result = await runInNetns<Result>('test/e2e/fixtures/signaling-chromium-netns.ts', [mode], { timeoutMs: 55_000 });
      expect(result.interfaces).toEqual(['lo']);
      expect(new Set(result.origins).size).toBe(2);
      expect(result.publishes).toBeGreaterThan(2);
      for (const r of result.reports) {
        expect(r.text).toEqual(['hello from desktop', 'hello from phone']);
        expect(r.awareness).toEqual(['desktop', 'phone']);
        expect(r.webrtcPeers).toBe(1);
        expect(r.bcPeers).toBe(0);
        expect(r.pair).toMatchObject({ state: 'succeeded', local: { candidateType: 'host', address: '127.0.0.1' } });
      }
    });
  }
});

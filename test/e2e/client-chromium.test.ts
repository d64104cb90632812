/**
 * In headless Chromium (loopback-only namespace), two pages with the bundled
 * SyncProvider sync over WebRTC and show their status, then fall back to the relay when WebRTC
 * is blocked, and keep syncing.
 */
import { expect, it } from 'vitest';
import { runInNetns } from '../helpers/netns.js';

interface Result {
  onWebrtc: Array<{ status: string; webrtcPeers: number; relay: boolean }>;
  onRelay: Array<{ status: string; relay: boolean }>;
  shownWebrtc: string[];
  shownRelay: string[];
  texts: string[][];
  errors: string[][];
  updates: number;
}

it('two Chromium pages sync over WebRTC, then over the relay when WebRTC is blocked', async () => {
  const r = await runInNetns<Result>('test/e2e/fixtures/client-chromium-netns.ts', [], { timeoutMs: 80_000 });
  for (const s of r.onWebrtc) expect(s).toMatchObject({ status: 'webrtc', webrtcPeers: 1 });
  for (const text of r.shownWebrtc) expect(text).toMatch(/^webrtc \(1 WebRTC peer/);
  for (const s of r.onRelay) expect(s).toMatchObject({ status: 'relay', relay: true });
  for (const text of r.shownRelay) expect(text).toMatch(/^relay /);
  for (const texts of r.texts) expect([...texts].sort()).toEqual(['over the relay', 'over webrtc']);
  // the ICE servers came from /turn-credentials without a failure
  for (const errors of r.errors) expect(errors.filter((e) => e.startsWith('turn-credentials'))).toEqual([]);
  expect(r.updates).toBeGreaterThan(0);
});

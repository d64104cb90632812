/**
 * Two devices joining in the same instant, in headless Chromium: each hears the other's announce
 * before either has a connection. Stock y-webrtc would have both offer (glare) and keep a pair
 * that carries nothing; the provider lets only the smaller peer id offer, so they meet on WebRTC
 * and sync both ways.
 */
import { expect, it } from 'vitest';
import { runInNetns } from '../helpers/netns.js';
import type { GlareResult } from './fixtures/client-glare-netns.js';

it('a simultaneous join ends on WebRTC, with one offer, and every message', async () => {
  const r = await runInNetns<GlareResult>('test/e2e/fixtures/client-glare-netns.ts', ['5000'], { timeoutMs: 100_000 });
  const smaller = [...r.peerIds].sort()[0];
  // Both pages saw exactly the offers of the smaller peer id (its own echoed back to it).
  for (const offers of r.offers) {
    expect(offers.length).toBeGreaterThan(0);
    expect(new Set(offers)).toEqual(new Set([smaller]));
  }
  for (const statuses of r.statuses) expect(statuses).toContain('webrtc');
  for (const texts of r.texts) expect([...texts].sort()).toEqual(['from the desktop', 'from the phone']);
  for (const errors of r.errors) expect(errors).toEqual([]);
}, 120_000);

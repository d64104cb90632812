/**
 * Headless Chromium, relay only, ICE servers from our /turn-credentials, holding a busy data
 * channel for 62 s with a 60 s allocation lifetime so that Refresh (at ~30 s) and ChannelBind
 * happen during the hold: once through our TURN server, once through coturn fed the same
 * REST credentials (use-auth-secret). Both run at once, each in its own loopback namespace.
 */
import { describe, expect, it } from 'vitest';
import { runInNetns } from '../helpers/netns.js';
import type { TurnHoldReport } from './fixtures/turn-chromium-page.js';

interface Result {
  interfaces: string[];
  report: TurnHoldReport;
  turn: Record<string, number>;
  turnPort: number;
}

const HOLD_MS = 62_000;

describe('Chromium relay-only data channel held 60 s+', () => {
  it('through our TURN server and through coturn with the same credentials', async () => {
    const run = (which: string) => runInNetns<Result>('test/e2e/fixtures/turn-chromium-netns.ts', [which, String(HOLD_MS)], { timeoutMs: HOLD_MS + 60_000 });
    const [ours, coturn] = await Promise.all([run('ours'), run('coturn')]);
    for (const [name, r] of [['ours', ours], ['coturn', coturn]] as const) {
      expect(r.interfaces, name).toEqual(['lo']);
      expect(r.report.closedEarly, name).toBe(false);
      expect(r.report.state, name).toBe('open');
      expect(r.report.heldMs, name).toBeGreaterThanOrEqual(60_000);
      expect(r.report.sent, name).toBeGreaterThan(500);
      expect(r.report.echoed, name).toBe(r.report.sent);
      expect(r.report.pair, name).toMatchObject({ state: 'succeeded', local: { candidateType: 'relay', url: `turn:127.0.0.1:${r.turnPort}?transport=udp` }, remote: { candidateType: 'relay' } });
      // the same two allocations all along, refreshed and channel-bound during the hold
      const evidence = `${name}: ${JSON.stringify(r.turn)}`;
      expect(r.turn['allocations'], evidence).toBe(2);
      expect(r.turn['refreshes'], evidence).toBeGreaterThanOrEqual(2);
      expect(r.turn['channelBinds'], evidence).toBeGreaterThanOrEqual(2);
    }
    expect(ours.turn['packetsToPeer']).toBeGreaterThan(2 * ours.report.sent);
    expect(ours.turn['packetsToClient']).toBeGreaterThan(2 * ours.report.sent);
    expect(ours.turn['authFailures']).toBe(0);
  }, HOLD_MS + 70_000);
});

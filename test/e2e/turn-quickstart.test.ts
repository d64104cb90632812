/**
 * The quick start end to end: `npm start` with default ports and no TURN settings (in a
 * loopback-only namespace, so 3478/4444/9641 are free and private), credentials from the running
 * server's /turn-credentials, an allocation and relayed echo traffic on the running TURN server
 * (coturn's turnutils_uclient, default mode). Proof from the TURN side: its /metrics.
 */
import { describe, expect, it } from 'vitest';
import { runInNetns } from '../helpers/netns.js';

interface Result {
  interfaces: string[];
  serverPort: number;
  turnListen: string;
  metricsPort: number;
  iceServers: Array<{ urls: string[]; username?: string }>;
  client: { code: number | null; sent: number; received: number; lost: number; out: string };
  before: Record<string, number>;
  after: Record<string, number>;
  exit: { code: number | null; signal: string | null };
  secretGenerated: boolean;
}

const TO_PEER = 'turn_relayed_packets_total{direction="to_peer"}';
const TO_CLIENT = 'turn_relayed_packets_total{direction="to_client"}';

describe('npm start: TURN credentials from the server work on the TURN server beside it', () => {
  it('allocates and relays with /turn-credentials against the default ports', async () => {
    const r = await runInNetns<Result>('test/e2e/fixtures/turn-quickstart-netns.ts', [], { timeoutMs: 90_000 });
    expect(r.interfaces).toEqual(['lo']);
    // the documented default ports; npm start listens on loopback only when it relays to loopback peers (scripts/start.ts)
    expect([r.serverPort, r.turnListen, r.metricsPort]).toEqual([4444, '127.0.0.1:3478', 9641]);
    expect(r.secretGenerated).toBe(true);
    expect(r.iceServers).toEqual([
      { urls: ['stun:127.0.0.1:3478'] },
      { urls: ['turn:127.0.0.1:3478'], username: expect.stringMatching(/^\d+:quickstart-device$/) },
    ]);
    expect({ code: r.client.code, lost: r.client.lost, received: r.client.received }, r.client.out).toEqual({ code: 0, lost: 0, received: r.client.sent });
    expect(r.client.sent).toBeGreaterThanOrEqual(50);
    // the TURN server saw the allocations and carried every packet both ways, with no refused credentials
    expect(r.before['turn_allocations_total']).toBe(0);
    expect(r.after['turn_allocations_total']).toBeGreaterThanOrEqual(1);
    expect(r.after[TO_PEER]).toBeGreaterThanOrEqual(r.client.sent);
    expect(r.after[TO_CLIENT]).toBeGreaterThanOrEqual(r.client.sent);
    expect(r.after['turn_auth_failures_total']).toBe(0);
    // Ctrl-C stopped both processes
    expect(r.exit.signal === 'SIGINT' || r.exit.code === 0 || r.exit.code === 130).toBe(true);
  }, 100_000);
});

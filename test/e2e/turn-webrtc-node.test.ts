/**
 * Two Node WebRTC peers (libdatachannel), relay only, with ICE servers from GET /turn-credentials,
 * open a data channel through our TURN server. Proof from the TURN side: allocations made and
 * datagrams counted through the relay in both directions; and both peers selected relay/relay.
 * The peers run in a process of their own (fixtures/turn-datachannel-pair.ts says why: a
 * libdatachannel deadlock over TURN relays blocked this test's worker for good, so the run hung).
 *
 * Why the relay sits on 127.0.0.2: libdatachannel's `iceTransportPolicy: 'relay'` only filters
 * the candidates it signals. libjuice still runs connectivity checks from its host socket
 * (127.0.0.1) to the remote relay address. A TURN permission covers an IP address (RFC 5766
 * section 8), so with clients and relays all on 127.0.0.1 the remote relay accepted those checks,
 * both peers learned each other's host socket as a peer-reflexive candidate, and about one run in
 * six (more under load) they nominated a direct host<->prflx pair: the messages arrived but never
 * crossed the relay (turn_relayed_packets_total{direction="to_peer"} stayed at 3..9). With the
 * relays on another loopback address, a permission for a peer's relay never admits its host socket.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET, testToken } from '../helpers/server.js';
import { withTimeout } from '../helpers/timeout.js';
import { baseEnv, runProcess, type RunningProcess } from '../helpers/process.js';
import type { SelectedPair } from '../helpers/ice-stats.js';
import { startTurn, type TestTurn } from '../../apps/turn/test/helpers/turn.js';

const TURN_SECRET = 'shared-turn-secret-for-e2e-0123456';
/** the peers' host sockets bind 127.0.0.1 (datachannelWrtc); relays get their own address */
const RELAY_IP = '127.0.0.2';
const PAIR = 'test/e2e/fixtures/turn-datachannel-pair.ts';
const scope = serverPerTest();
let turn: TestTurn | undefined;
const pairs: RunningProcess[] = [];
afterEach(async () => {
  await Promise.all(pairs.splice(0).map((p) => p.kill()));
  await withTimeout(scope.close(), 15_000, 'server closed').catch(() => undefined);
  await withTimeout(turn?.close() ?? Promise.resolve(), 10_000, 'TURN closed').catch(() => undefined);
  turn = undefined;
});

interface PairResult {
  relayCandidates: string[];
  got: string[];
  selected: Array<SelectedPair | undefined>;
}

/**
 * The pair's report. A pair that reports nothing within 45 s (the deadlock above: its data
 * channel never opens) is killed and a fresh one tried, once; the second failure fails the test.
 */
async function runPair(iceServers: RTCIceServer[]): Promise<PairResult> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= 2; attempt++) {
    const pair = runProcess(process.execPath, ['--import', 'tsx', PAIR], baseEnv({ ICE_SERVERS: JSON.stringify(iceServers) }));
    pairs.push(pair);
    try {
      const line = await pair.waitForLine((l) => 'pair' in l, 45_000);
      return line['pair'] as PairResult;
    } catch (err) {
      lastError = new Error(`attempt ${attempt}: ${String(err)}; stderr: ${pair.stderr().slice(-2000)}`);
      await pair.kill();
    }
  }
  throw lastError;
}

describe('Node WebRTC through our TURN server', () => {
  it('opens a relay-only data channel with credentials from /turn-credentials', async () => {
    turn = await startTurn({ TURN_SECRET, TURN_ALLOW_LOOPBACK_PEERS: 'true', TURN_RELAY_IP: RELAY_IP });
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, TURN_SECRET, TURN_URLS: `turn:127.0.0.1:${turn.turn.port}?transport=udp` });
    const token = await testToken('device-1', ['acme-conversation-*']);
    const res = await fetch(`${server.url}/turn-credentials`, { headers: { authorization: `Bearer ${token}` } });
    const { iceServers } = (await res.json()) as { iceServers: RTCIceServer[] };
    expect(iceServers.some((s) => s.username)).toBe(true);

    const { relayCandidates, got, selected } = await runPair(iceServers);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `message ${i}`));

    // every candidate offered was a relay candidate, and the TURN server carried the traffic
    expect(relayCandidates.length).toBeGreaterThan(0);
    expect(relayCandidates.every((c) => c.includes(` ${RELAY_IP} `) && c.includes(' typ relay'))).toBe(true);
    // both ends really use relay<->relay (no host or peer-reflexive shortcut)
    expect(selected).toHaveLength(2);
    for (const pair of selected) {
      expect(pair).toMatchObject({ local: { candidateType: 'relay', address: RELAY_IP }, remote: { candidateType: 'relay', address: RELAY_IP } });
    }
    expect(await turn.metric('turn_allocations_total')).toBeGreaterThanOrEqual(2);
    expect(await turn.metric('turn_relayed_packets_total{direction="to_peer"}')).toBeGreaterThan(20);
    expect(await turn.metric('turn_relayed_packets_total{direction="to_client"}')).toBeGreaterThan(20);
    expect(await turn.metric('turn_auth_failures_total{reason="bad_password"}')).toBe(0);
  }, 120_000);
});

/**
 * Two Node WebRTC peers (libdatachannel), relay only, with ICE servers from GET /turn-credentials,
 * open a data channel through our TURN server. Proof from the TURN side: allocations made and
 * datagrams counted through the relay in both directions; and both peers selected relay/relay.
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
import { datachannelWrtc } from '../helpers/wrtc.js';
import { selectedCandidatePair } from '../helpers/ice-stats.js';
import { startTurn, type TestTurn } from '../../apps/turn/test/helpers/turn.js';

const TURN_SECRET = 'shared-turn-secret-for-e2e-0123456';
/** the peers' host sockets bind 127.0.0.1 (datachannelWrtc); relays get their own address */
const RELAY_IP = '127.0.0.2';
const scope = serverPerTest();
let turn: TestTurn | undefined;
afterEach(async () => {
  // Bounded: a libdatachannel peer closed in the middle of ICE (after a failure) can take long to
  // close; the run goes on rather than waiting on it.
  await withTimeout(scope.close(), 15_000, 'peers and server closed').catch(() => undefined); // the peer connections, then the server
  await withTimeout(turn?.close() ?? Promise.resolve(), 10_000, 'TURN closed').catch(() => undefined);
  turn = undefined;
});

describe('Node WebRTC through our TURN server', () => {
  it('opens a relay-only data channel with credentials from /turn-credentials', async () => {
    turn = await startTurn({ TURN_SECRET, TURN_ALLOW_LOOPBACK_PEERS: 'true', TURN_RELAY_IP: RELAY_IP });
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, TURN_SECRET, TURN_URLS: `turn:127.0.0.1:${turn.turn.port}?transport=udp` });
    const token = await testToken('device-1', ['acme-conversation-*']);
    const res = await fetch(`${server.url}/turn-credentials`, { headers: { authorization: `Bearer ${token}` } });
    const { iceServers } = (await res.json()) as { iceServers: RTCIceServer[] };
    expect(iceServers.some((s) => s.username)).toBe(true);

    const wrtc = await datachannelWrtc();
    // node-datachannel's polyfill pastes username and credential into a `turn:user:pass@host`
    // URL that libdatachannel percent-decodes: REST usernames contain ':' and base64 '/', '+'.
    const encoded = iceServers.map((s) => (s.username ? { ...s, username: encodeURIComponent(s.username), credential: encodeURIComponent(String(s.credential)) } : s));
    const config: RTCConfiguration = { iceServers: encoded, iceTransportPolicy: 'relay' };
    const a = new wrtc.RTCPeerConnection(config);
    const b = new wrtc.RTCPeerConnection(config);
    scope.track(a, b);
    const relayCandidates: string[] = [];
    for (const [from, to] of [[a, b], [b, a]] as const) {
      from.onicecandidate = (e) => {
        if (!e.candidate) return;
        relayCandidates.push(e.candidate.candidate);
        to.addIceCandidate(e.candidate).catch(() => undefined);
      };
    }
    const channel = a.createDataChannel('chat');
    const remote = new Promise<RTCDataChannel>((resolve) => (b.ondatachannel = (e) => resolve(e.channel)));
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription!);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription!);

    await withTimeout(new Promise<void>((resolve) => (channel.onopen = () => resolve())), 20_000, 'data channel open');
    const inbox = await withTimeout(remote, 10_000, 'remote channel');
    const got: string[] = [];
    const all = new Promise<void>((resolve) => {
      inbox.onmessage = (e) => {
        got.push(String(e.data));
        if (got.length === 20) resolve();
      };
    });
    for (let i = 0; i < 20; i++) channel.send(`message ${i}`);
    await withTimeout(all, 10_000, '20 messages');
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `message ${i}`));

    // every candidate offered was a relay candidate, and the TURN server carried the traffic
    expect(relayCandidates.length).toBeGreaterThan(0);
    expect(relayCandidates.every((c) => c.includes(` ${RELAY_IP} `) && c.includes(' typ relay'))).toBe(true);
    // both ends really use relay<->relay (no host or peer-reflexive shortcut)
    for (const pc of [a, b]) {
      const pair = selectedCandidatePair(await pc.getStats());
      expect(pair).toMatchObject({ local: { candidateType: 'relay', address: RELAY_IP }, remote: { candidateType: 'relay', address: RELAY_IP } });
    }
    expect(await turn.metric('turn_allocations_total')).toBeGreaterThanOrEqual(2);
    expect(await turn.metric('turn_relayed_packets_total{direction="to_peer"}')).toBeGreaterThan(20);
    expect(await turn.metric('turn_relayed_packets_total{direction="to_client"}')).toBeGreaterThan(20);
    expect(await turn.metric('turn_auth_failures_total{reason="bad_password"}')).toBe(0);
  });
});

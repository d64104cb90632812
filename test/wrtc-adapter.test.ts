/**
 * The node-datachannel adapter (test/helpers/wrtc.ts) keeps its local candidates to itself until
 * it holds the remote description: an answerer must not reach the offerer before the offerer
 * has the answer's certificate fingerprint (libdatachannel 0.24.5 races there; see wrtc.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { datachannelWrtc } from './helpers/wrtc.js';
import { withTimeout } from './helpers/timeout.js';

const opened: RTCPeerConnection[] = [];
afterEach(() => {
  for (const pc of opened.splice(0)) pc.close();
});

async function pair(): Promise<[RTCPeerConnection, RTCPeerConnection]> {
  const { RTCPeerConnection: PC } = await datachannelWrtc();
  const offerer = new PC({ iceServers: [] });
  const answerer = new PC({ iceServers: [] });
  opened.push(offerer, answerer);
  return [offerer, answerer];
}

function gathered(pc: RTCPeerConnection): Promise<void> {
  return new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
  });
}

function opens(channel: RTCDataChannel): Promise<void> {
  return new Promise((done) => (channel.readyState === 'open' ? done() : channel.addEventListener('open', () => done())));
}

describe('node-datachannel adapter', () => {
  it('an offerer shows no candidate before it holds the answer, then trickles them and connects', async () => {
    const [offerer, answerer] = await pair();
    const early: RTCIceCandidateInit[] = [];
    const late: RTCIceCandidateInit[] = [];
    let answered = false;
    offerer.addEventListener('icecandidate', (e) => {
      const c = (e as RTCPeerConnectionIceEvent).candidate;
      if (c) (answered ? late : early).push(c);
    });
    answerer.addEventListener('icecandidate', (e) => {
      const c = (e as RTCPeerConnectionIceEvent).candidate;
      if (c) offerer.addIceCandidate(c).catch(() => undefined);
    });
    const channel = offerer.createDataChannel('chat');
    await offerer.setLocalDescription(await offerer.createOffer());
    await withTimeout(gathered(offerer), 5000, 'offerer gathering');
    // Gathering is complete, yet neither the offer nor any event gave a candidate away.
    expect(offerer.localDescription?.sdp).toContain('a=fingerprint:');
    expect(offerer.localDescription?.sdp).not.toMatch(/a=candidate:|a=end-of-candidates/);
    expect(early).toEqual([]);

    const received = new Promise<RTCDataChannel>((done) => answerer.addEventListener('datachannel', (e) => done((e as RTCDataChannelEvent).channel)));
    await answerer.setRemoteDescription(offerer.localDescription as RTCSessionDescriptionInit);
    const answer = await answerer.createAnswer();
    await answerer.setLocalDescription(answer);
    answered = true;
    await offerer.setRemoteDescription(answerer.localDescription as RTCSessionDescriptionInit);
    // Now held candidates flow (127.0.0.1 only), and the channel opens on both sides.
    expect(late.length).toBeGreaterThan(0);
    for (const c of late) expect(c.candidate).toContain('127.0.0.1');
    for (const c of late) await answerer.addIceCandidate(c);
    const remote = await withTimeout(received, 10_000, 'datachannel at the answerer');
    await withTimeout(Promise.all([opens(channel), opens(remote)]), 10_000, 'channel open');
    const message = new Promise<string>((done) => remote.addEventListener('message', (e) => done(String((e as MessageEvent).data))));
    channel.send('hello');
    expect(await withTimeout(message, 5000, 'message')).toBe('hello');
  });
});

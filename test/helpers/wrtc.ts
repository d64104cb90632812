/**
 * WebRTC for Node-side peers: the object to give simple-peer's `wrtc` option, i.e.
 * y-webrtc's `peerOpts: { wrtc, config: { iceServers } }`.
 *
 * - datachannelWrtc(): node-datachannel's W3C polyfill (libdatachannel), bound to 127.0.0.1.
 *   Works anywhere (vitest forks or threads, no namespace needed). The default choice.
 * - roamWrtc(): @roamhq/wrtc (real libwebrtc). Gathers on every interface, so use it ONLY
 *   inside runInNetns, and only in forked processes (threads segfault).
 */
import type { RTCPeerConnection as PolyfillPeerConnection } from 'node-datachannel/polyfill';

/** What simple-peer reads from its `wrtc` option. */
export interface Wrtc {
  RTCPeerConnection: typeof globalThis.RTCPeerConnection;
  RTCSessionDescription: typeof globalThis.RTCSessionDescription;
  RTCIceCandidate: typeof globalThis.RTCIceCandidate;
}

export interface DatachannelOptions {
  /** local address candidates are gathered on (default 127.0.0.1: no packet leaves loopback) */
  bindAddress?: string;
}

/** simple-peer assigns `desc.sdp`; the polyfill's descriptions are read-only, so hand out plain ones. */
class PlainSessionDescription {
  type: RTCSdpType;
  sdp: string;
  constructor(init: RTCSessionDescriptionInit) {
    this.type = init.type;
    this.sdp = init.sdp ?? '';
  }
  toJSON(): RTCSessionDescriptionInit {
    return { type: this.type, sdp: this.sdp };
  }
}

function plain(desc: RTCSessionDescriptionInit): RTCSessionDescriptionInit {
  return { type: desc.type, sdp: desc.sdp ?? '' };
}

/** The SDP without its candidates: they follow by trickle once they may be used. */
function withoutCandidates(sdp: string): string {
  return sdp
    .split('\r\n')
    .filter((line) => !line.startsWith('a=candidate:') && line !== 'a=end-of-candidates')
    .join('\r\n');
}

export async function datachannelWrtc(opts: DatachannelOptions = {}): Promise<Wrtc> {
  const polyfill = await import('node-datachannel/polyfill');
  const bindAddress = opts.bindAddress ?? '127.0.0.1';
  const Base = polyfill.RTCPeerConnection as typeof PolyfillPeerConnection;
  /**
   * Local candidates are held back until the remote description is in (offer: the answer was
   * applied; answer: always already the case). libdatachannel 0.24.5 (node-datachannel 0.33.4)
   * starts DTLS as soon as ICE connects, even while the remote description that carries the
   * peer's certificate fingerprint is still being applied (fixed upstream by libdatachannel
   * PR #1612). An answerer that knew the offerer's candidates reached it over ICE before the
   * answer had arrived there, its DTLS hello hit that window, the offerer's check failed
   * ("DTLS alert: unknown CA"), its connection closed, and simple-peer never noticed (the
   * polyfill reports "closed", never "failed"): y-webrtc then kept a dead connection on both
   * sides. Most often with a room password, whose signaling is encrypted and slower than
   * loopback. Without our candidates, the answerer cannot reach us before we hold its
   * fingerprint.
   */
  class LoopbackPeerConnection extends Base {
    private held: Event[] | null = [];
    constructor(config: RTCConfiguration = {}) {
      // bindAddress is a libdatachannel option the polyfill passes through
      super({ ...config, bindAddress } as RTCConfiguration);
    }
    override async createOffer(): Promise<RTCSessionDescriptionInit> {
      return this.shown(plain((await super.createOffer()) as RTCSessionDescriptionInit));
    }
    override async createAnswer(): Promise<RTCSessionDescriptionInit> {
      return this.shown(plain((await super.createAnswer()) as RTCSessionDescriptionInit));
    }
    override get localDescription(): RTCSessionDescription {
      const desc = super.localDescription;
      return (desc.sdp ? this.shown(plain(desc)) : desc) as RTCSessionDescription;
    }
    override async setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void> {
      await super.setRemoteDescription(description);
      const held = this.held ?? [];
      this.held = null;
      for (const event of held) super.dispatchEvent(event);
    }
    override dispatchEvent(event: Event): boolean {
      if (event.type !== 'icecandidate' || !this.held) return super.dispatchEvent(event);
      this.held.push(event);
      return true;
    }
    private shown(desc: RTCSessionDescriptionInit): RTCSessionDescriptionInit {
      return this.held ? { type: desc.type, sdp: withoutCandidates(desc.sdp ?? '') } : desc;
    }
  }
  return {
    RTCPeerConnection: LoopbackPeerConnection as unknown as Wrtc['RTCPeerConnection'],
    RTCSessionDescription: PlainSessionDescription as unknown as Wrtc['RTCSessionDescription'],
    RTCIceCandidate: polyfill.RTCIceCandidate as unknown as Wrtc['RTCIceCandidate'],
  };
}

/** @roamhq/wrtc as-is. Throws outside a loopback-only namespace, where it would probe real interfaces. */
export async function roamWrtc(): Promise<Wrtc> {
  const { networkInterfaces } = await import('node:os');
  const others = Object.keys(networkInterfaces()).filter((name) => name !== 'lo');
  if (others.length > 0) throw new Error(`@roamhq/wrtc only inside runInNetns (found interfaces: ${others.join(', ')})`);
  const mod = (await import('@roamhq/wrtc')) as unknown as { default: Wrtc };
  return mod.default;
}

/**
 * node-datachannel's W3C polyfill (libdatachannel) made fit for simple-peer. node-datachannel is
 * an optional peer dependency, loaded only when this is called.
 */
import type { Wrtc } from './wrtc.js';

export interface DatachannelOptions {
  /** local address candidates are gathered on (default: libdatachannel's, every interface) */
  bindAddress?: string;
}

/** The parts of node-datachannel/polyfill used here (its types stay out of ours: it may be absent). */
interface PolyfillPeerConnection {
  createOffer(): Promise<RTCSessionDescriptionInit>;
  createAnswer(): Promise<RTCSessionDescriptionInit>;
  readonly localDescription: RTCSessionDescriptionInit | null;
  setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void>;
  dispatchEvent(event: Event): boolean;
}
interface Polyfill {
  RTCPeerConnection: new (config?: RTCConfiguration) => PolyfillPeerConnection;
  RTCIceCandidate: unknown;
}

/** A variable, so bundlers leave the optional module alone. */
const POLYFILL = 'node-datachannel/polyfill';

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
  let polyfill: Polyfill;
  try {
    polyfill = (await import(POLYFILL)) as Polyfill;
  } catch (err) {
    throw new Error(`nodeWebrtc: install node-datachannel (npm install node-datachannel) or pass { wrtc }: ${err instanceof Error ? err.message : String(err)}`);
  }
  const extra = opts.bindAddress === undefined ? {} : { bindAddress: opts.bindAddress };
  const Base = polyfill.RTCPeerConnection;
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
      super({ ...config, ...extra } as RTCConfiguration);
    }
    override async createOffer(): Promise<RTCSessionDescriptionInit> {
      return this.shown(plain(await super.createOffer()));
    }
    override async createAnswer(): Promise<RTCSessionDescriptionInit> {
      return this.shown(plain(await super.createAnswer()));
    }
    override get localDescription(): RTCSessionDescriptionInit | null {
      const desc = super.localDescription;
      return desc?.sdp ? this.shown(plain(desc)) : desc;
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
    RTCIceCandidate: polyfill.RTCIceCandidate as Wrtc['RTCIceCandidate'],
  };
}


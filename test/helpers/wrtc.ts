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

export async function datachannelWrtc(opts: DatachannelOptions = {}): Promise<Wrtc> {
  const polyfill = await import('node-datachannel/polyfill');
  const bindAddress = opts.bindAddress ?? '127.0.0.1';
  const Base = polyfill.RTCPeerConnection as typeof PolyfillPeerConnection;
  class LoopbackPeerConnection extends Base {
    constructor(config: RTCConfiguration = {}) {
      // bindAddress is a libdatachannel option the polyfill passes through
      super({ ...config, bindAddress } as RTCConfiguration);
    }
    override async createOffer(): Promise<RTCSessionDescriptionInit> {
      return plain((await super.createOffer()) as RTCSessionDescriptionInit);
    }
    override async createAnswer(): Promise<RTCSessionDescriptionInit> {
      return plain((await super.createAnswer()) as RTCSessionDescriptionInit);
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

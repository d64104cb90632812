/**
 * `@sync-suite/client/webrtc-node`: WebRTC for SyncProvider in Node and Electron's main process,
 * the object y-webrtc's `peerOpts.wrtc` takes. Browsers and React Native (react-native-webrtc
 * registers globals) do not need it.
 *
 *   import { nodeWebrtc } from '@sync-suite/client/webrtc-node';
 *   new SyncProvider(doc, { ..., peerOpts: { wrtc: await nodeWebrtc() } });
 */
import { datachannelWrtc } from './node/datachannel.js';
import type { Wrtc } from './node/wrtc.js';

export type { Wrtc } from './node/wrtc.js';

export interface NodeWebrtcOptions {
  /** a W3C WebRTC implementation you already have (e.g. `@roamhq/wrtc`): returned as is, after a shape check */
  wrtc?: Wrtc;
  /** node-datachannel only: the local address candidates are gathered on (default: every interface) */
  bindAddress?: string;
}

/**
 * The given implementation, or node-datachannel's polyfill (an optional peer dependency:
 * `npm install node-datachannel`) with the fixes simple-peer needs.
 */
export async function nodeWebrtc(opts: NodeWebrtcOptions = {}): Promise<Wrtc> {
  if (opts.wrtc) {
    for (const name of ['RTCPeerConnection', 'RTCSessionDescription', 'RTCIceCandidate'] as const) {
      if (typeof opts.wrtc[name] !== 'function') throw new TypeError(`nodeWebrtc: wrtc.${name} is not a constructor`);
    }
    return opts.wrtc;
  }
  return datachannelWrtc(opts.bindAddress === undefined ? {} : { bindAddress: opts.bindAddress });
}

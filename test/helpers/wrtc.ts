/**
 * WebRTC for Node-side peers: the object to give simple-peer's `wrtc` option, i.e.
 * y-webrtc's `peerOpts: { wrtc, config: { iceServers } }`.
 *
 * - datachannelWrtc(): node-datachannel's W3C polyfill (libdatachannel), bound to 127.0.0.1.
 *   Works anywhere (vitest forks or threads, no namespace needed). The default choice.
 * - roamWrtc(): @roamhq/wrtc (real libwebrtc). Gathers on every interface, so use it ONLY
 *   inside runInNetns, and only in forked processes (threads segfault).
 */
import { nodeWebrtc, type Wrtc } from '../../packages/client/src/webrtc-node.js';

export type { Wrtc };

export interface DatachannelOptions {
  /** local address candidates are gathered on (default 127.0.0.1: no packet leaves loopback) */
  bindAddress?: string;
}

/** The client package's node-datachannel adapter (packages/client/src/node/datachannel.ts), on loopback by default. */
export function datachannelWrtc(opts: DatachannelOptions = {}): Promise<Wrtc> {
  return nodeWebrtc({ bindAddress: opts.bindAddress ?? '127.0.0.1' });
}

/** @roamhq/wrtc as-is. Throws outside a loopback-only namespace, where it would probe real interfaces. */
export async function roamWrtc(): Promise<Wrtc> {
  const { networkInterfaces } = await import('node:os');
  const others = Object.keys(networkInterfaces()).filter((name) => name !== 'lo');
  if (others.length > 0) throw new Error(`@roamhq/wrtc only inside runInNetns (found interfaces: ${others.join(', ')})`);
  const mod = (await import('@roamhq/wrtc')) as unknown as { default: Wrtc };
  return mod.default;
}

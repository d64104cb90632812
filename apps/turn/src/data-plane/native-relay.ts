/**
 * The ChannelData fast path in C (packages/udp-relay): the sockets it is given are read by it,
 * and a datagram of a channel it holds is forwarded there without entering JavaScript. It holds
 * what the control plane decided, pushed here: each allocation's client (route) and its live
 * channels with their expiry (channels). Every other datagram comes back to the listener given
 * to receive(), so the data plane in JavaScript (data-plane.ts) still decides everything else.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:dgram';
import type { UdpRelayAddon } from '@sync-suite/udp-relay';

/** the receiver of what the addon does not relay (dgram-fast.ts's DatagramListener, not imported: dgram-fast.ts imports this file) */
type DatagramListener = (datagram: Buffer, from: { address: string; port: number }) => void;

/** the counters the addon keeps (packages/udp-relay/src/udp-relay.c), in its order */
export interface NativeCounts {
  toPeerBytes: number;
  toPeerPackets: number;
  toClientBytes: number;
  toClientPackets: number;
  /** sends the kernel refused (a full socket buffer, or another send error): the datagram is dropped, as UDP may */
  sendDrops: number;
  /** datagrams handed back to JavaScript */
  toJavaScript: number;
}

/** The addon, or why not (not built on this machine, or another OS). */
export function loadUdpRelay(): { addon?: UdpRelayAddon; reason?: string } {
  try {
    const loaded = createRequire(import.meta.url)('@sync-suite/udp-relay') as { addon: UdpRelayAddon | null; reason?: string };
    return loaded.addon ? { addon: loaded.addon } : { reason: `udp-relay addon not built (${loaded.reason ?? 'unknown'})` };
  } catch (err) {
    return { reason: `udp-relay not installed (${err instanceof Error ? err.message : String(err)})` };
  }
}

/** One bound channel as the addon takes it: number, peer IP bytes, peer port, expiry (ms) */
export type NativeChannel = readonly [number, Buffer, number, number];

export class NativeRelay {
  /** the sockets read here (removed when they stop) */
  private readonly ids = new Map<Socket, number>();
  /** counts not yet taken: the addon counts per socket, and a stopped socket's last counts land here */
  private readonly counts = new Float64Array(6);

  constructor(private readonly addon: UdpRelayAddon) {}

  /**
   * Read `fd` (the bound dgram socket's descriptor) here instead of by dgram: the caller has
   * stopped dgram's reading. `relay`: a relay socket (peers' datagrams), else a listening socket.
   */
  receive(socket: Socket, fd: number, relay: boolean, listener: DatagramListener): void {
    this.stop(socket);
    const family = socket.address().family === 'IPv6' ? 6 : 4;
    this.ids.set(socket, this.addon.open(fd, family, relay, (datagram, address, port) => listener(datagram, { address, port })));
  }

  /** Whether the socket is read here. */
  has(socket: Socket): boolean {
    return this.ids.has(socket);
  }

  /** Stop reading the socket here; its descriptor's duplicate is closed. */
  stop(socket: Socket): void {
    const id = this.ids.get(socket);
    if (id === undefined) return;
    this.ids.delete(socket);
    this.addon.close(id, this.counts);
  }

  /** The relay socket's allocation is the client's at `clientIp` (4 or 16 bytes) and port, on `listener`. */
  route(relay: Socket, listener: Socket, clientIp: Buffer, clientPort: number): boolean {
    const relayId = this.ids.get(relay);
    const listenerId = this.ids.get(listener);
    if (relayId === undefined || listenerId === undefined) return false;
    return this.addon.route(relayId, listenerId, clientIp, clientPort);
  }

  /** The relay socket's live channels, replacing what the addon held; returns how many it holds. */
  channels(relay: Socket, list: readonly NativeChannel[]): number {
    const id = this.ids.get(relay);
    return id === undefined ? 0 : this.addon.channels(id, list);
  }

  /** What the addon counted on this server's sockets since the last call (a scrape: once per socket, not per datagram). */
  takeCounts(): NativeCounts {
    const c = this.counts;
    for (const id of this.ids.values()) this.addon.counters(id, c);
    const counts = { toPeerBytes: c[0]!, toPeerPackets: c[1]!, toClientBytes: c[2]!, toClientPackets: c[3]!, sendDrops: c[4]!, toJavaScript: c[5]! };
    c.fill(0);
    return counts;
  }
}

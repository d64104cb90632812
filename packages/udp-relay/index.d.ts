/** src/udp-relay.c: the TURN data plane's ChannelData fast path. */
export interface UdpRelayAddon {
  /** Poll a dup of a bound dgram socket's descriptor; datagrams not relayed in C go to `callback`. */
  open(fd: number, family: 4 | 6, relay: boolean, callback: (datagram: Buffer, address: string, port: number) => void): number;
  /** Stop polling and close the dup; the socket's last counts are added into `into` (as counters()). */
  close(id: number, into: Float64Array): void;
  /** The relay socket's allocation belongs to this client (IP as 4 or 16 bytes) on that listening socket. */
  route(relay: number, listener: number, clientIp: Buffer, clientPort: number): boolean;
  /** Replace the relay's channels: [number, peer IP bytes, peer port, expires (ms, as Date.now())]; returns how many are held. */
  channels(relay: number, list: ReadonlyArray<readonly [number, Buffer, number, number]>): number;
  /**
   * Add what the socket's datagrams caused since the last call into `into` and reset it: toPeerBytes,
   * toPeerPackets, toClientBytes, toClientPackets, sendDrops, toJavaScript.
   */
  counters(id: number, into: Float64Array): void;
}
export declare const addon: UdpRelayAddon | null;
export declare const reason: string | undefined;

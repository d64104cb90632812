/**
 * The relay's data plane: ChannelData and Send indications from clients, datagrams from peers
 * on relay sockets. Recognised from their first bytes and forwarded with map lookups prepared
 * by the control plane (client address -> allocation, channel -> peer, peer -> channel,
 * permissions); node-turn never sees them. Per datagram: no strings of ours and no object but
 * the payload's view toward a peer (a subarray: the UDP handle takes whole buffers, dgram-fast.ts),
 * the payload never copied (headers go out in the same send as the payload, from scratch buffers).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';
import type { RemoteInfo, UdpIo } from './dgram-fast.js';
import type { PeerFilter } from '../peer-filter.js';
import { ipBytes, ipText } from '../ip.js';
import {
  PADDING, SendIndication, isChannelDataStart, isSendIndicationStart,
  readSendIndication, sendIndicationIpv6, writeChannelDataHeader, writeDataIndicationPrefix,
} from '../stun/indications.js';
import { RelayAllocation, type ClientAddress, type Permission } from './relay-allocation.js';
import type { RelayCounters } from './counters.js';
import type { NativeChannel } from './native-relay.js';
import { ScratchSends } from './scratch.js';

export interface DataPlaneHooks {
  /** a Send indication toward a peer the filter denies (it cannot be answered: counted, dropped) */
  deniedSend(allocation: RelayAllocation, address: string, port: number): void;
}

export class DataPlane {
  /** client IP -> client port -> allocation */
  private readonly clients = new Map<string, Map<number, RelayAllocation>>();
  private readonly send = new SendIndication();
  private readonly scratch = new ScratchSends();
  /** Data indication transaction IDs: 8 random bytes and a counter (they only need to differ) */
  private readonly transactionId = randomBytes(12);
  private sequence = 0;

  constructor(
    private readonly peers: PeerFilter,
    private readonly counters: RelayCounters,
    private readonly hooks: DataPlaneHooks,
    /** sends and receives (dgram-fast.ts) */
    readonly io: UdpIo,
  ) {
    const native = io.native;
    // what the native path relayed is counted there (native-relay.ts), added at each flush
    if (native) counters.pull = () => native.takeCounts();
  }

  /** Start relaying for an allocation: its relay socket's datagrams now come here. */
  add(client: ClientAddress, relay: Socket, owner: string): RelayAllocation {
    const allocation = new RelayAllocation(client, relay, owner, this.io.senderOf(client.socket), this.io.senderOf(relay), this.peers.isSelf);
    let ports = this.clients.get(client.address);
    if (!ports) this.clients.set(client.address, (ports = new Map()));
    ports.set(client.port, allocation);
    this.io.receive(relay, (datagram, from) => {
      try {
        this.fromPeer(allocation, datagram, from);
      } catch {
        // the listening socket closed under us (shutdown): nothing to relay to
      }
    }, true);
    const native = this.io.native;
    const clientIp = ipBytes(client.address);
    if (native && clientIp && native.route(relay, client.socket, clientIp, client.port)) {
      // the channels the native path relays: every live binding, each until it or its permission expires
      allocation.changed = () => {
        // expired bindings leave only when read (relay-allocation.ts): they must not take the addon's slots
        const now = Date.now();
        const list: NativeChannel[] = [];
        for (const b of allocation.channels.values()) {
          const expires = Math.min(b.expires, b.permission.expires);
          if (expires > now) list.push([b.channel, b.permission.ip, b.port, expires]);
        }
        native.channels(relay, list);
      };
    }
    return allocation;
  }

  remove(allocation: RelayAllocation): void {
    const ports = this.clients.get(allocation.client.address);
    if (ports?.get(allocation.client.port) !== allocation) return;
    ports.delete(allocation.client.port);
    if (ports.size === 0) this.clients.delete(allocation.client.address);
    this.io.stopReceiving(allocation.relay);
  }

  /**
   * A datagram on a listening socket: true when it was relayed data (forwarded or dropped
   * here), false when it is for the control plane.
   */
  fromClient(socket: Socket, datagram: Buffer, from: RemoteInfo): boolean {
    if (datagram.length === 0) return false;
    if (isChannelDataStart(datagram[0]!)) {
      this.channelData(socket, datagram, from);
      return true;
    }
    if (isSendIndicationStart(datagram)) {
      this.sendIndication(socket, datagram, from);
      return true;
    }
    return false;
  }

  private allocationOf(socket: Socket, from: RemoteInfo): RelayAllocation | undefined {
    const allocation = this.clients.get(from.address)?.get(from.port);
    return allocation?.client.socket === socket ? allocation : undefined;
  }

  private channelData(socket: Socket, datagram: Buffer, from: RemoteInfo): void {
    if (datagram.length < 4) return;
    const allocation = this.allocationOf(socket, from);
    if (allocation === undefined) return;
    const length = datagram.readUInt16BE(2);
    if (4 + length > datagram.length) return;
    const binding = allocation.channels.get(datagram.readUInt16BE(0));
    const now = Date.now();
    // port 0: dgram's send() throws on it
    if (binding === undefined || binding.expires <= now || binding.permission.expires <= now || binding.port === 0) return;
    this.toPeer(allocation, datagram, 4, length, binding.port, binding.permission.address);
    this.counters.toPeerBytes += length;
    this.counters.toPeerPackets++;
  }

  private sendIndication(socket: Socket, datagram: Buffer, from: RemoteInfo): void {
    const s = this.send;
    if (!readSendIndication(datagram, s) || s.port === 0) return;
    const allocation = this.allocationOf(socket, from);
    if (allocation === undefined) return;
    const permission = s.family === 1 ? allocation.permissionsV4.get(s.ipv4) : allocation.permissions.get(ipText(sendIndicationIpv6(datagram, s.ipv6Offset)));
    if (permission === undefined || permission.expires <= Date.now()) return this.unpermittedSend(allocation, datagram);
    // the server's own IPs: only relay ports (peer-filter.ts)
    if (permission.self && this.peers.deniesPort(permission.address, s.port)) return this.hooks.deniedSend(allocation, permission.address, s.port);
    this.toPeer(allocation, datagram, s.dataOffset, s.dataLength, s.port, permission.address);
    this.counters.toPeerBytes += s.dataLength;
    this.counters.toPeerPackets++;
  }

  private toPeer(allocation: RelayAllocation, datagram: Buffer, offset: number, length: number, port: number, address: string): void {
    const scratch = this.scratch;
    scratch.single[0] = datagram.subarray(offset, offset + length);
    scratch.sent(allocation.relayOut.send(scratch.single, port, address));
  }

  /** Off the hot path: name the peer only to count and log a denied one. */
  private unpermittedSend(allocation: RelayAllocation, datagram: Buffer): void {
    const s = this.send;
    const address = s.family === 1 ? ipText(Buffer.from([s.ipv4 >>> 24, (s.ipv4 >>> 16) & 0xff, (s.ipv4 >>> 8) & 0xff, s.ipv4 & 0xff])) : ipText(sendIndicationIpv6(datagram, s.ipv6Offset));
    if (this.peers.denies(address)) this.hooks.deniedSend(allocation, address, s.port);
  }

  private fromPeer(allocation: RelayAllocation, datagram: Buffer, from: RemoteInfo): void {
    const permission = allocation.permissions.get(from.address);
    const now = Date.now();
    if (permission === undefined || permission.expires <= now) return;
    const binding = allocation.peerChannels.get(from.address)?.get(from.port);
    if (binding !== undefined && binding.expires > now) this.channelDataToClient(allocation, binding.channel, datagram);
    else this.dataIndication(allocation, permission, from.port, datagram);
    this.counters.toClientBytes += datagram.length;
    this.counters.toClientPackets++;
  }

  private channelDataToClient(allocation: RelayAllocation, channel: number, datagram: Buffer): void {
    const scratch = this.scratch;
    writeChannelDataHeader(scratch.header, channel, datagram.length);
    scratch.pair[0] = scratch.header;
    scratch.pair[1] = datagram;
    const client = allocation.client;
    scratch.sent(allocation.clientOut.send(scratch.pair, client.port, client.address));
  }

  private dataIndication(allocation: RelayAllocation, peer: Permission, port: number, datagram: Buffer): void {
    const scratch = this.scratch;
    const padding = (4 - (datagram.length & 3)) & 3;
    const prefix = peer.ip.length === 16 ? scratch.prefix6 : scratch.prefix4;
    this.transactionId.writeUInt32BE((this.sequence = (this.sequence + 1) >>> 0), 8);
    writeDataIndicationPrefix(prefix, this.transactionId, peer.ip, port, datagram.length);
    const list = padding > 0 ? scratch.triple : scratch.pair;
    list[0] = prefix;
    list[1] = datagram;
    if (padding > 0) list[2] = PADDING[padding]!;
    const client = allocation.client;
    scratch.sent(allocation.clientOut.send(list, client.port, client.address));
  }
}

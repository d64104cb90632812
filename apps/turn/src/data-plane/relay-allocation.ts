/**
 * What the data plane knows about one allocation, kept in the shapes its lookups need:
 * permissions by peer IP (text, and for IPv4 the number a Send indication decodes to),
 * channels by number, and channels by peer IP and port. Filled by the control plane
 * (CreatePermission, ChannelBind); read per datagram without allocating.
 */
import type { Socket } from 'node:dgram';
import type { DatagramSender } from './dgram-fast.js';
import { canonicalIp, ipBytes, ipv4Number } from '../ip.js';

/** RFC 5766 section 8 */
export const PERMISSION_LIFETIME_MS = 300_000;
/** RFC 5766 section 11 */
export const CHANNEL_LIFETIME_MS = 600_000;

export class Permission {
  expires = 0;
  /** one of the server's own addresses: the port of each datagram toward it is checked (peer-filter.ts) */
  self = false;
  constructor(
    /** canonical text, as in rinfo.address */
    readonly address: string,
    /** 4 or 16 bytes, for Data indications */
    readonly ip: Buffer,
  ) {}
}

export class ChannelBinding {
  expires = 0;
  constructor(
    readonly channel: number,
    readonly port: number,
    readonly permission: Permission,
  ) {}
}

export interface ClientAddress {
  /** the listening socket the allocation was made on: replies and relayed data leave from it */
  socket: Socket;
  address: string;
  port: number;
}

export class RelayAllocation {
  /** called after permissions or channels changed (the native path's copy, data-plane.ts) */
  changed: (() => void) | undefined;
  readonly permissions = new Map<string, Permission>();
  readonly permissionsV4 = new Map<number, Permission>();
  readonly channels = new Map<number, ChannelBinding>();
  /** peer IP -> peer port -> binding */
  readonly peerChannels = new Map<string, Map<number, ChannelBinding>>();

  constructor(
    readonly client: ClientAddress,
    readonly relay: Socket,
    /** the username, for logs */
    readonly owner: string,
    /** sends on client.socket */
    readonly clientOut: DatagramSender,
    /** sends on relay */
    readonly relayOut: DatagramSender,
    /** whether a peer IP is one of the server's own (peer-filter.ts) */
    private readonly isSelf: (address: string) => boolean = () => false,
  ) {}

  private batching = 0;
  private dirty = false;

  /**
   * Run `fn` with one `changed` call at the end (if anything changed) instead of one per
   * permission or binding: the native path's copy is rebuilt from every binding each time.
   */
  batch<T>(fn: () => T): T {
    this.batching++;
    try {
      return fn();
    } finally {
      if (--this.batching === 0 && this.dirty) {
        this.dirty = false;
        this.changed?.();
      }
    }
  }

  private touched(): void {
    if (this.batching > 0) this.dirty = true;
    else this.changed?.();
  }

  /** Install or refresh the permission for a peer IP (any spelling); undefined if it is not an IP. */
  permit(address: string, now: number): Permission | undefined {
    const canonical = canonicalIp(address);
    if (canonical === undefined) return undefined;
    let permission = this.permissions.get(canonical);
    if (!permission) {
      const ip = ipBytes(canonical)!;
      permission = new Permission(canonical, ip);
      permission.self = this.isSelf(canonical);
      this.permissions.set(canonical, permission);
      if (ip.length === 4) this.permissionsV4.set(ipv4Number(ip), permission);
    }
    permission.expires = now + PERMISSION_LIFETIME_MS;
    this.touched();
    return permission;
  }

  /**
   * Whether permissions for `addresses` (canonical or not) fit within `max` live ones: the
   * expired are removed first when they would not (RFC 8656 section 9: a permission lasts 300 s
   * unless refreshed; with its bindings, which need it). Memory per allocation stays bounded.
   */
  roomForPermissions(addresses: readonly string[], max: number, now: number): boolean {
    const fresh = () => {
      const names = new Set<string>();
      for (const a of addresses) {
        const c = canonicalIp(a);
        if (c !== undefined && !this.permissions.has(c)) names.add(c);
      }
      return names.size;
    };
    if (this.permissions.size + fresh() <= max) return true;
    for (const permission of [...this.permissions.values()]) if (permission.expires <= now) this.forget(permission);
    return this.permissions.size + fresh() <= max;
  }

  /** Whether `channel` can be bound within `max` channels: it is bound already, or there is room once expired bindings leave. */
  roomForChannel(channel: number, max: number, now: number): boolean {
    if (this.channels.has(channel) || this.channels.size < max) return true;
    for (const binding of [...this.channels.values()]) if (binding.expires <= now || binding.permission.expires <= now) this.unbind(binding);
    return this.channels.size < max;
  }

  /** The peer bound to another channel than `channel` on `address`:`port` (RFC 8656 section 12), from the peer map: no scan. */
  channelOfPeer(address: string, port: number, now: number): number | undefined {
    const canonical = canonicalIp(address);
    const binding = canonical === undefined ? undefined : this.peerChannels.get(canonical)?.get(port);
    if (binding === undefined) return undefined;
    if (binding.expires > now) return binding.channel;
    this.unbind(binding);
    return undefined;
  }

  /** Bind or refresh `channel` to a peer; also refreshes the peer's permission (RFC 5766 section 11.2). */
  bind(channel: number, address: string, port: number, now: number): void {
    const permission = this.permit(address, now);
    if (!permission) return;
    const current = this.channels.get(channel);
    if (current && (current.permission !== permission || current.port !== port)) this.unbind(current);
    let binding = this.channels.get(channel);
    if (!binding) {
      binding = new ChannelBinding(channel, port, permission);
      this.channels.set(channel, binding);
      let ports = this.peerChannels.get(permission.address);
      if (!ports) this.peerChannels.set(permission.address, (ports = new Map()));
      ports.set(port, binding);
    }
    binding.expires = now + CHANNEL_LIFETIME_MS;
    this.touched();
  }

  /** Whether `channel` is bound and not expired; an expired binding is removed. */
  channelLive(channel: number, now: number): boolean {
    const binding = this.channels.get(channel);
    if (!binding) return false;
    if (binding.expires > now) return true;
    this.unbind(binding);
    return false;
  }

  /** Remove an expired permission and the bindings that needed it. */
  private forget(permission: Permission): void {
    this.permissions.delete(permission.address);
    if (permission.ip.length === 4 && this.permissionsV4.get(ipv4Number(permission.ip)) === permission) this.permissionsV4.delete(ipv4Number(permission.ip));
    for (const binding of [...(this.peerChannels.get(permission.address)?.values() ?? [])]) this.unbind(binding);
    for (const binding of [...this.channels.values()]) if (binding.permission === permission) this.unbind(binding);
  }

  private unbind(binding: ChannelBinding): void {
    this.channels.delete(binding.channel);
    const ports = this.peerChannels.get(binding.permission.address);
    if (ports?.get(binding.port) === binding) {
      ports.delete(binding.port);
      if (ports.size === 0) this.peerChannels.delete(binding.permission.address);
    }
    this.touched();
  }
}

/**
 * The data plane's sends and receives, with less of dgram's per-datagram work. Every use of
 * Node internals in apps/turn is in this file. On the Node versions it was tested on, a send
 * calls the socket's UDP handle directly (dgram.Socket#send builds a buffer list, a lookup
 * closure, an async-id scope and a SendWrap per datagram), and a datagram is handed to our
 * listener from the handle's onmessage (no EventEmitter emit). Anywhere else, or when a socket
 * does not look as expected, the public API is used: the behaviour is the same, only slower.
 *
 * The handle's send(req, list, count, port, address, hasCallback) tries the send at once; only
 * when the kernel would block does its C++ side make `req` a SendWrap and queue the datagram:
 * `req` must then be a genuine SendWrap object (anything else aborts the process), and it and
 * the buffers must stay alive until the send completes. So one SendWrap is reused until a send
 * is queued; that one keeps the buffer list and a fresh one is taken.
 */
import { createSocket, type Socket } from 'node:dgram';
import { loadUdpRelay, NativeRelay } from './native-relay.js';

export interface RemoteInfo {
  address: string;
  port: number;
}

export type DatagramListener = (datagram: Buffer, from: RemoteInfo) => void;

export interface DatagramSender {
  /** through the UDP handle (else dgram's public API) */
  readonly viaHandle: boolean;
  /**
   * Send the buffers of `list` as one datagram (an error other than a closed socket drops it,
   * as dgram does for a send without callback). True when the kernel took it during the call:
   * the buffers may be written again at once. False when it was queued: the sender keeps the
   * buffers alive, and the caller must not write into them again. Throws on a closed socket.
   */
  send(list: Buffer[], port: number, address: string): boolean;
}

/** Node majors this file's use of dgram and udp_wrap internals was checked against (lib/dgram.js, src/udp_wrap.cc). */
const TESTED_NODE_MAJORS = [20];
/** lib/internal/dgram.js: the state object's property, and BIND_STATE_BOUND */
const STATE_SYMBOL = 'state symbol';
const BIND_STATE_BOUND = 2;

interface UdpHandle {
  /** the socket's descriptor (udp_wrap's fd getter), for the native path */
  readonly fd?: number;
  recvStart(): number;
  recvStop(): number;
  send(req: object, list: Buffer[], count: number, port: number, address: string, hasCallback: boolean): number;
  onmessage: (this: UdpHandle, nread: number, handle: UdpHandle, buffer: Buffer, rinfo: RemoteInfo) => void;
}

interface DgramState {
  handle: UdpHandle | null;
  bindState: number;
}

type SendWrapClass = new () => { list?: Buffer[] };

export interface UdpPath {
  /**
   * 'native': bound channels' datagrams relayed by packages/udp-relay (C), the rest as on
   * 'udp handle' (Node internals); 'dgram': the public API
   */
  path: 'native' | 'udp handle' | 'dgram';
  /** why not the native path (or not the UDP handle either) */
  reason?: string;
}

export type Internals = { SendWrap: SendWrapClass; UDP: abstract new () => object };

let detected: Detected | undefined;

export interface Detected {
  internals?: Internals;
  /** why not */
  reason?: string;
}

/**
 * Node's internals as this file expects them, or why not. Run once per process (UdpIo), on
 * this Node's version and udp_wrap binding.
 */
export function detectInternals(nodeVersion: string, binding: () => Record<string, unknown>): Detected {
  const major = Number(nodeVersion.split('.')[0]);
  if (!TESTED_NODE_MAJORS.includes(major)) return { reason: `node ${nodeVersion} not tested` };
  let internals: Internals;
  try {
    const { SendWrap, UDP } = binding();
    if (typeof SendWrap !== 'function' || typeof UDP !== 'function') return { reason: 'udp_wrap binding without SendWrap or UDP' };
    internals = { SendWrap: SendWrap as SendWrapClass, UDP: UDP as abstract new () => object };
  } catch {
    return { reason: 'no udp_wrap binding' };
  }
  // the shape of a socket, checked once on one that is never bound
  const probe = createSocket('udp4');
  const ok = stateOf(probe, internals) !== undefined;
  probe.close();
  return ok ? { internals } : { reason: 'dgram socket state not as expected' };
}

/** process.binding is deprecated (DEP0111) but warns only under --pending-deprecation */
const udpWrapBinding = (): Record<string, unknown> => (process as unknown as { binding(name: string): Record<string, unknown> }).binding('udp_wrap');

function stateOf(socket: Socket, internals: Internals): DgramState | undefined {
  const symbol = Object.getOwnPropertySymbols(socket).find((s) => s.description === STATE_SYMBOL);
  const state = symbol === undefined ? undefined : (socket as unknown as Record<symbol, unknown>)[symbol];
  if (typeof state !== 'object' || state === null || !('handle' in state) || !('bindState' in state)) return undefined;
  const handle = (state as DgramState).handle;
  // onmessage is dgram's once the socket is bound (receive() checks it)
  if (handle === null || !(handle instanceof internals.UDP) || typeof handle.send !== 'function') return undefined;
  return state as DgramState;
}

class PublicSender implements DatagramSender {
  readonly viaHandle = false;
  constructor(private readonly socket: Socket) {}

  send(list: Buffer[], port: number, address: string): boolean {
    this.socket.send(list, port, address);
    return this.socket.getSendQueueCount() === 0;
  }
}

class HandleSender implements DatagramSender {
  readonly viaHandle = true;
  private req: { list?: Buffer[] };
  private readonly fallback: PublicSender;

  constructor(
    socket: Socket,
    private readonly state: DgramState,
    private readonly SendWrap: SendWrapClass,
  ) {
    this.req = new SendWrap();
    this.fallback = new PublicSender(socket);
  }

  send(list: Buffer[], port: number, address: string): boolean {
    const handle = this.state.handle;
    // closed, or a port the C++ side would abort on (it checks for a uint32): dgram throws the usual error
    if (handle === null || (port & 0xffff) !== port) return this.fallback.send(list, port, address);
    if (handle.send(this.req, list, list.length, port, address, false) !== 0) return true;
    // queued: this req is now the SendWrap of the pending send and keeps the buffers alive until it is done.
    // The C++ side reads the list only during the call (it takes each buffer's address), the buffers'
    // bytes when the datagram goes out; callers empty and reuse their lists at once (scratch.ts), so
    // the req keeps a copy of the list, not the list itself (test/fixtures/queued-sends.ts).
    this.req.list = list.slice();
    this.req = new this.SendWrap();
    return false;
  }
}

/**
 * Sends and receives of one server's sockets: through the UDP handle where this Node allows it
 * and `allowInternals` (TURN_UDP_INTERNALS), else through dgram's public API. With `allowNative`
 * (TURN_UDP_NATIVE) too and the addon built, sockets are read by packages/udp-relay, which relays
 * bound channels' datagrams itself (native-relay.ts); sends from JavaScript still go through the handle.
 */
export class UdpIo {
  readonly path: UdpPath;
  /** the native path, when taken */
  readonly native: NativeRelay | undefined;
  private readonly internals: Internals | undefined;
  private readonly senders = new WeakMap<Socket, DatagramSender>();
  /** dgram's own onmessage of each handle taken over: given back, and it reports receive errors */
  private readonly dgramOnMessage = new WeakMap<Socket, UdpHandle['onmessage']>();

  constructor(allowInternals: boolean, allowNative = false) {
    if (!allowInternals) {
      this.path = { path: 'dgram', reason: 'TURN_UDP_INTERNALS=false' };
      return;
    }
    detected ??= detectInternals(process.versions.node, udpWrapBinding);
    this.internals = detected.internals;
    if (!detected.internals) {
      this.path = { path: 'dgram', reason: detected.reason ?? 'unknown' };
      return;
    }
    const loaded = allowNative ? loadUdpRelay() : { reason: 'TURN_UDP_NATIVE=false' };
    this.native = loaded.addon ? new NativeRelay(loaded.addon) : undefined;
    this.path = this.native ? { path: 'native' } : { path: 'udp handle', reason: loaded.reason };
  }

  /** The state of a bound socket whose internals are as expected, else undefined (use the public API). */
  private bound(socket: Socket): DgramState | undefined {
    if (!this.internals) return undefined;
    const state = stateOf(socket, this.internals);
    return state?.bindState === BIND_STATE_BOUND ? state : undefined;
  }

  /** The sender for a bound socket (one per socket: call when the socket is set up, not per datagram). */
  senderOf(socket: Socket): DatagramSender {
    let sender = this.senders.get(socket);
    if (sender === undefined) {
      const state = this.bound(socket);
      sender = state && this.internals ? new HandleSender(socket, state, this.internals.SendWrap) : new PublicSender(socket);
      this.senders.set(socket, sender);
    }
    return sender;
  }

  /**
   * Hand every datagram of a bound socket to `listener`, instead of to its 'message' listeners
   * (removed). Receive errors are still emitted as 'error' on the socket, by dgram's own code
   * (on the native path, the addon ignores them as dgram does for a socket without listeners).
   * `relay`: a relay socket (peers' datagrams), else a listening socket (clients').
   */
  receive(socket: Socket, listener: DatagramListener, relay = false): void {
    this.stopReceiving(socket);
    const handle = this.bound(socket)?.handle;
    if (this.native && handle && typeof handle.fd === 'number' && handle.fd >= 0 && typeof handle.recvStop === 'function') {
      socket.removeAllListeners('message');
      handle.recvStop();
      this.native.receive(socket, handle.fd, relay, listener);
      // the addon's duplicate keeps the port bound: closed with the socket at the latest
      socket.once('close', () => this.native?.stop(socket));
      return;
    }
    if (!handle || typeof handle.onmessage !== 'function') {
      socket.on('message', listener);
      return;
    }
    const own = handle.onmessage;
    this.dgramOnMessage.set(socket, own);
    handle.onmessage = function onmessage(nread, h, buffer, rinfo) {
      if (nread < 0) return own.call(this, nread, h, buffer, rinfo);
      listener(buffer, rinfo);
    };
  }

  /** Undo receive(): the socket's datagrams go to its 'message' listeners again (none). */
  stopReceiving(socket: Socket): void {
    socket.removeAllListeners('message');
    if (this.native?.has(socket)) {
      this.native.stop(socket);
      if (this.internals) stateOf(socket, this.internals)?.handle?.recvStart();
      return;
    }
    const own = this.dgramOnMessage.get(socket);
    if (own === undefined || !this.internals) return;
    this.dgramOnMessage.delete(socket);
    const handle = stateOf(socket, this.internals)?.handle;
    if (handle) handle.onmessage = own;
  }
}

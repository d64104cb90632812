/**
 * The WebRTC side: a stock y-webrtc WebrtcProvider whose signaling connection gets a fresh
 * token for every reconnect (TokenGate), speaks only for this room, and reports what the
 * policy needs: is signaling open, how many devices are on the topic, how many WebRTC peers
 * are connected and synced.
 */
import type * as Y from 'yjs';
import type { Awareness } from 'y-protocols/awareness';
import { WebrtcProvider } from 'y-webrtc';
import { closeRoomChannelLater } from './broadcast-channel.js';
import type { PendingTracker } from './pending.js';
import { syncKind } from './sync-step.js';
import { TokenGate } from './token-gate.js';

/** The parts of y-webrtc's internals we read (stable across 10.x). */
interface SignalingConnInternals {
  ws: { addEventListener(type: 'close', listener: (event: { code?: number; reason?: string }) => void): void } | null;
  connected: boolean;
  connect(): void;
  send(message: SignalingMessage): void;
  on(event: 'connect' | 'disconnect' | 'message', listener: (message: SignalingMessage) => void): void;
}
interface SignalingMessage {
  type?: unknown;
  topic?: unknown;
  topics?: unknown;
  clients?: unknown;
}
interface PeerInternals {
  initiator: boolean;
  on(event: 'connect' | 'close', listener: () => void): void;
  on(event: 'data', listener: (data: Uint8Array) => void): void;
  send(data: Uint8Array): void;
  destroy(): void;
}
interface WebrtcConnInternals {
  remotePeerId: string;
  connected: boolean;
  closed: boolean;
  peer: PeerInternals;
}
interface RoomInternals {
  peerId: string;
  webrtcConns: Map<string, WebrtcConnInternals>;
  bcConns: Set<string>;
}

export interface WebrtcTransportOptions {
  room: string;
  doc: Y.Doc;
  awareness: Awareness;
  password: string | undefined;
  peerOpts: Record<string, unknown>;
  maxConns: number | undefined;
  /** a peer connection that has not synced after this long (plus up to half again, at random) is dropped */
  peerSyncTimeoutMs: number;
  signalingUrl: (token: string | undefined) => string;
  /** token for the first attempt (already fetched by the provider) */
  firstToken: string | undefined;
  getToken: () => Promise<string | undefined>;
  onChange: () => void;
  onTokenError: (err: unknown) => void;
  /** the server closed the signaling socket with a 4xxx code (refused the token, the room, a limit) */
  onRefused: (close: { code: number; reason: string }) => void;
  /** counts what the peers confirmed */
  pending: PendingTracker;
  /** reconnect signaling with a fresh token this long before the token expires (at most half its life) */
  tokenRefreshMarginMs: number;
}

export class WebrtcTransport {
  readonly provider: WebrtcProvider;
  signalingOpen = false;
  /** an attempt failed or the socket closed since it was last open */
  signalingFailed = false;
  /** subscribers on the topic, from the `clients` field of the last publish we received */
  private subscribers: number | undefined;
  private readonly conn: SignalingConnInternals;
  private readonly gate: TokenGate;
  private readonly watched = new WeakSet<WebrtcConnInternals>();
  /** peers whose sync step 2 we received (see sync-step.ts for why not y-webrtc's flag) */
  private readonly synced = new WeakSet<WebrtcConnInternals>();
  private readonly stuckTimers = new Set<ReturnType<typeof setTimeout>>();
  /** we closed the signaling socket to reopen it with a fresh token: not a failure */
  private swapping = false;

  constructor(private readonly opts: WebrtcTransportOptions) {
    this.provider = new WebrtcProvider(opts.room, opts.doc, {
      signaling: [opts.signalingUrl(opts.firstToken)],
      ...(opts.password ? { password: opts.password } : {}),
      awareness: opts.awareness,
      peerOpts: opts.peerOpts,
      ...(opts.maxConns ? { maxConns: opts.maxConns } : {}),
    });
    const conn = (this.provider as unknown as { signalingConns: SignalingConnInternals[] }).signalingConns[0];
    if (!conn) throw new Error('y-webrtc created no signaling connection');
    this.conn = conn;
    this.scopeToRoom(conn);
    conn.on('connect', () => this.opened());
    conn.on('message', (m) => this.heard(m));
    this.watchAttempt();
    this.gate = new TokenGate(
      conn,
      {
        getToken: opts.getToken,
        url: opts.signalingUrl,
        onTokenError: opts.onTokenError,
        onAttempt: () => this.watchAttempt(),
        refresh: { marginMs: opts.tokenRefreshMarginMs, onDue: () => this.swapSocket() },
      },
      true,
    );
    this.gate.armRefresh(opts.firstToken);
    this.provider.on('peers', () => {
      this.watchPeers();
      opts.onChange();
    });
  }

  private get room(): RoomInternals | null {
    return (this.provider as unknown as { room: RoomInternals | null }).room;
  }

  /** other devices on the topic (our own tabs, which sync over BroadcastChannel, left out) */
  get others(): number | undefined {
    if (this.subscribers === undefined || !this.signalingOpen) return undefined;
    return Math.max(0, this.subscribers - 1 - (this.room?.bcConns.size ?? 0));
  }

  get connectedPeers(): number {
    return [...(this.room?.webrtcConns.values() ?? [])].filter((c) => c.connected).length;
  }

  get syncedPeers(): number {
    return [...(this.room?.webrtcConns.values() ?? [])].filter((c) => c.connected && this.synced.has(c)).length;
  }

  /** ICE servers (and any other simple-peer option) for the next peer connections */
  setPeerOpts(peerOpts: Record<string, unknown>): void {
    this.provider.peerOpts = peerOpts;
  }

  destroy(): void {
    for (const t of this.stuckTimers) clearTimeout(t);
    this.stuckTimers.clear();
    this.gate.close();
    // WebrtcProvider.destroy() leaves the signaling socket open; disconnect() closes it.
    this.provider.disconnect();
    this.provider.destroy();
    closeRoomChannelLater(this.opts.room);
  }

  /**
   * y-webrtc subscribes every signaling socket to every room of the page. Our socket carries
   * a token for this room only, so anything about another room would be refused (4403).
   */
  private scopeToRoom(conn: SignalingConnInternals): void {
    const send = conn.send.bind(conn);
    const room = this.opts.room;
    conn.send = (message) => {
      if (Array.isArray(message.topics)) {
        if (!message.topics.includes(room)) return;
        send({ ...message, topics: [room] });
      } else if (message.type !== 'publish' || message.topic === room) {
        send(message);
      }
    };
  }

  private opened(): void {
    this.signalingOpen = true;
    this.signalingFailed = false;
    this.opts.onChange();
  }

  /** Each attempt's socket: its close (refused, dropped, or never opened) is what we react to. */
  private watchAttempt(): void {
    const ws = this.conn.ws;
    if (!ws) return;
    ws.addEventListener('close', (event) => {
      if (typeof event.code === 'number' && event.code >= 4000) this.opts.onRefused({ code: event.code, reason: event.reason ?? '' });
      this.signalingOpen = false;
      // A swap reopens at once; WebRTC peers are not affected by signaling closing meanwhile.
      this.signalingFailed = !this.swapping;
      this.swapping = false;
      this.subscribers = undefined;
      this.opts.onChange();
    });
  }

  /** The token is about to expire and a fresh one is waiting in the gate: reopen the signaling socket. */
  private swapSocket(): void {
    const ws = this.conn.ws as { close(): void } | null;
    if (!ws) return;
    this.swapping = true;
    ws.close();
  }

  private heard(m: SignalingMessage): void {
    if (m.type !== 'publish' || m.topic !== this.opts.room) return;
    // The server relays our own announce back to us only once it accepted our subscribe.
    this.gate.succeeded();
    if (typeof m.clients !== 'number') return;
    if (m.clients === this.subscribers) return;
    this.subscribers = m.clients;
    this.opts.onChange();
  }

  private watchPeers(): void {
    const room = this.room;
    for (const conn of room?.webrtcConns.values() ?? []) {
      if (this.watched.has(conn)) continue;
      this.watched.add(conn);
      if (room && this.yields(room, conn)) continue;
      const timer = this.dropIfStuck(conn);
      const changed = (): void => this.opts.onChange();
      const channel = this.opts.pending.open((frame) => conn.peer.send(frame));
      conn.peer.on('connect', changed);
      conn.peer.on('close', () => {
        channel.close();
        this.forget(timer);
        changed();
      });
      conn.peer.on('data', (data) => {
        const kind = syncKind(data);
        channel.heard(kind);
        if (this.synced.has(conn) || kind !== 'step2') return;
        this.synced.add(conn);
        this.forget(timer);
        changed();
      });
    }
  }

  /**
   * Stock y-webrtc makes an offer to every device whose announce it hears. When two devices hear
   * each other's announce before either has a connection (they joined in the same instant), both
   * offer (glare), and y-webrtc's tie-break feeds one offer into a connection that already made
   * its own: both sides then report "connected" on a pair that carries nothing, forever (seen in
   * Chromium and libdatachannel). So of two devices only the one with the smaller peer id offers:
   * the other drops the connection y-webrtc just opened, before its offer is made (simple-peer
   * makes it in a later microtask), and y-webrtc's close handler announces us again, which makes
   * the smaller one offer if it has not already. A stock y-webrtc peer offers on any announce.
   */
  private yields(room: RoomInternals, conn: WebrtcConnInternals): boolean {
    if (!conn.peer.initiator || room.peerId < conn.remotePeerId) return false;
    conn.peer.destroy();
    return true;
  }

  /**
   * A pair can still end up open and carrying nothing (glare with a stock y-webrtc peer, a
   * network change mid-handshake). A peer not synced in time is dropped: y-webrtc announces us
   * again and the two meet afresh. The random extra keeps both sides from dropping at once.
   */
  private dropIfStuck(conn: WebrtcConnInternals): ReturnType<typeof setTimeout> {
    const ms = this.opts.peerSyncTimeoutMs * (1 + Math.random() / 2);
    const timer = setTimeout(() => {
      this.stuckTimers.delete(timer);
      if (!this.synced.has(conn) && !conn.closed) conn.peer.destroy();
    }, ms);
    this.stuckTimers.add(timer);
    return timer;
  }

  private forget(timer: ReturnType<typeof setTimeout>): void {
    clearTimeout(timer);
    this.stuckTimers.delete(timer);
  }
}

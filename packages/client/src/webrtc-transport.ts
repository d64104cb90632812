/**
 * The WebRTC side: a stock y-webrtc WebrtcProvider whose signaling connection gets a fresh
 * token for every reconnect (TokenGate), speaks only for this room, and reports what the
 * policy needs: is signaling open, how many devices are on the topic, how many WebRTC peers
 * are connected and synced.
 *
 * Everything y-webrtc reads from outside is screened first (see "Hostile input" in README.md):
 * signaling frames come from anyone holding a token for the room (and from whoever runs /signal),
 * peer messages from any peer that completed signaling. y-webrtc trusts both: a malformed one
 * throws in a socket handler or rejects a promise nobody catches, which ends a Node, Electron or
 * React Native process. Such input is dropped and reported (`onDropped`); y-webrtc itself is not
 * changed.
 */
import type * as Y from 'yjs';
import type { Awareness } from 'y-protocols/awareness';
import { WebrtcProvider } from 'y-webrtc';
import { fromBase64 } from 'lib0/buffer';
import * as decoding from 'lib0/decoding';
import { closeRoomChannelLater } from './broadcast-channel.js';
import { refusesToken } from './attempt-pacer.js';
import { reclaimOwnState, screenAwarenessMessage } from './awareness-guard.js';
import { HeardClients } from './heard-clients.js';
import type { PendingTracker } from './pending.js';
import { isSyncMessage, syncKind } from './sync-step.js';
import { TokenGate } from './token-gate.js';
import { syncFrameFault, syncMessageRefusal } from './update-screen.js';

/** y-webrtc's peer message type of an awareness update (messageAwareness in node_modules/y-webrtc/src/y-webrtc.js) */
const PEER_AWARENESS = 1;

/** The parts of y-webrtc's internals we read (stable across 10.x). */
interface SignalingSocketInternals {
  addEventListener(type: 'close', listener: (event: { code?: number; reason?: string }) => void): void;
  /** lib0/websocket's handler: JSON.parse, then emit('message') */
  onmessage: ((event: unknown) => void) | null;
}
type MessageListener = (message: SignalingMessage) => void;
interface SignalingConnInternals {
  ws: SignalingSocketInternals | null;
  connected: boolean;
  connect(): void;
  send(message: SignalingMessage): void;
  on(event: 'connect' | 'disconnect' | 'message', listener: MessageListener): void;
  off(event: 'message', listener: MessageListener): void;
  /** lib0 Observable's listeners by event: y-webrtc's own 'message' handler is there */
  _observers: Map<string, Set<MessageListener>>;
}
interface SignalingMessage {
  type?: unknown;
  topic?: unknown;
  topics?: unknown;
  clients?: unknown;
  data?: unknown;
}
interface PeerInternals {
  initiator: boolean;
  /** simple-peer's RTCPeerConnection (null once destroyed) */
  _pc: { sctp?: { maxMessageSize?: number | null } | null } | null;
  on(event: 'connect' | 'close', listener: () => void): void;
  on(event: 'data', listener: (data: Uint8Array) => void): void;
  emit(event: string, ...args: unknown[]): boolean;
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
  /** the AES-GCM key derived from the password (null: no password) */
  key: CryptoKey | null;
}

/**
 * Awareness client ids one WebRTC peer connection may introduce here: ids first heard from it,
 * with no state here yet (this device's own id is never taken from a peer: awareness-guard.ts).
 * Stock y-webrtc passes on every awareness change it applies, other clients' too
 * (_awarenessUpdateHandler in node_modules/y-webrtc/src/y-webrtc.js), and sends every state it
 * holds when a connection opens, so an honest peer introduces itself, its tabs and the devices it
 * hears that we do not (over another peer or the relay): a handful in a chat room. Without a cap
 * any member reaching the topic piled up states on every device it connected to (100 messages of
 * 132 KB: 1.2 million states, 263 MB, 3.4 s of CPU). Counted per connection, so a flooder cannot
 * crowd out anyone else's presence; an id leaves the count once its state is gone here (removed,
 * timed out), and the count goes with the connection.
 */
export const WEBRTC_MAX_CLIENTS_PER_PEER = 64;

/**
 * The largest awareness state (its JSON, in bytes) taken from a WebRTC peer by default: the
 * relay's own default for one state (RELAY_MAX_AWARENESS_BYTES, packages/shared/src/config/server-config.ts).
 * Without a bound one state weighed up to a whole data channel message (256 KiB between Chromium
 * or libdatachannel peers), held here and sent on to every other peer, up to
 * WEBRTC_MAX_CLIENTS_PER_PEER times per connection.
 */
export const WEBRTC_MAX_AWARENESS_BYTES = 16_384;

/**
 * The message size assumed when the connection does not tell its own (no RTCSctpTransport, as in
 * older Safari): RFC 8841's default for a peer that does not state a=max-message-size.
 */
export const FALLBACK_MAX_MESSAGE_BYTES = 65_536;

/**
 * Peer ids (y-webrtc's, one per device session) whose connection sent a frame with broken framing
 * (WebrtcTransport.breakPeer) remembered at most: a later connection from one of them is taken
 * as broken from the start. A hostile peer can pick a fresh id; the bound keeps that from growing
 * memory (past it all are forgotten), and a forgotten id only costs one more closed connection.
 */
const MAX_BROKEN_PEER_IDS = 256;

export type DroppedSource = 'signaling' | 'webrtc';
/** after a report, further drops from the same source are only counted for this long */
const DROP_REPORT_MS = 10_000;

export interface WebrtcTransportOptions {
  room: string;
  doc: Y.Doc;
  awareness: Awareness;
  password: string | undefined;
  peerOpts: Record<string, unknown>;
  maxConns: number | undefined;
  /** a peer connection that has not synced after this long (plus up to half again, at random) is dropped */
  peerSyncTimeoutMs: number;
  /** awareness states from a peer larger than this (JSON bytes) are dropped (WEBRTC_MAX_AWARENESS_BYTES) */
  maxAwarenessBytes: number;
  signalingUrl: (token: string | undefined) => string;
  /** token for the first attempt (already fetched by the provider) */
  firstToken: string | undefined;
  getToken: () => Promise<string | undefined>;
  onChange: () => void;
  onTokenError: (err: unknown) => void;
  /** the server closed the signaling socket with a 4xxx code (refused the token, the room, a limit) */
  onRefused: (close: { code: number; reason: string }) => void;
  /** a signaling frame or a peer message was malformed and dropped (one report per source per 10 s, with a count) */
  onDropped: (source: DroppedSource, message: string) => void;
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
  /** peers a message to which could not be sent (over the channel's size limit): see guardSend */
  private readonly lost = new WeakSet<WebrtcConnInternals>();
  /** the awareness clients each peer has carried a state for (relay-presence.ts) */
  private readonly heardClients = new WeakMap<WebrtcConnInternals, HeardClients>();
  private readonly stuckTimers = new Set<ReturnType<typeof setTimeout>>();
  /** we closed the signaling socket to reopen it with a fresh token: not a failure */
  private swapping = false;
  private destroyed = false;
  /** encrypted signaling messages, screened one after the other (in arrival order) */
  private screening: Promise<void> = Promise.resolve();
  private readonly drops = new Map<DroppedSource, { reportedAt: number; unreported: number }>();
  /** peers (by y-webrtc peer id) whose refused update was reported: later ones are dropped silently */
  private readonly refusedPeers = new Set<string>();
  /** peer connections that sent a sync frame with broken framing: everything from them is ignored (breakPeer) */
  private readonly broken = new WeakSet<WebrtcConnInternals>();
  /** y-webrtc peer ids whose connection was broken (bounded: MAX_BROKEN_PEER_IDS) */
  private readonly brokenPeerIds = new Set<string>();
  /** peer connections whose awareness states over maxAwarenessBytes were reported */
  private readonly oversizedPeers = new WeakSet<WebrtcConnInternals>();
  /** peer connections whose awareness entries past WEBRTC_MAX_CLIENTS_PER_PEER were reported */
  private readonly cappedPeers = new WeakSet<WebrtcConnInternals>();

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
    this.guardSignaling(conn);
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
        path: 'signal',
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
    return [...(this.room?.webrtcConns.values() ?? [])].filter((c) => c.connected && this.isSynced(c)).length;
  }

  private isSynced(conn: WebrtcConnInternals): boolean {
    return this.synced.has(conn) && !this.lost.has(conn) && !this.broken.has(conn);
  }

  /** A connected WebRTC peer still carries this awareness client's state (the peer itself, or one it relays). */
  carries(client: number): boolean {
    return [...(this.room?.webrtcConns.values() ?? [])].some((c) => c.connected && !c.closed && !!this.heardClients.get(c)?.has(client));
  }

  /** ICE servers (and any other simple-peer option) for the next peer connections */
  setPeerOpts(peerOpts: Record<string, unknown>): void {
    this.provider.peerOpts = peerOpts;
  }

  destroy(): void {
    this.destroyed = true;
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

  /**
   * y-webrtc's handler of signaling messages (registered on the connection when y-webrtc made it)
   * is replaced by one that screens each message first and passes on only what y-webrtc can
   * handle without throwing. Without a password y-webrtc handles a message synchronously, so it
   * runs under try/catch too. With one (every sealed room) it decrypts the message and handles it
   * in a promise without a catch, from a payload anyone can send: the screen decrypts it first and
   * passes on only messages that decrypt, decode and have the shape y-webrtc reads.
   */
  private guardSignaling(conn: SignalingConnInternals): void {
    for (const stock of [...(conn._observers.get('message') ?? [])]) {
      conn.off('message', stock);
      conn.on('message', (m) => this.screen(m, stock));
    }
  }

  private screen(m: unknown, stock: MessageListener): void {
    if (this.destroyed) return;
    if (!isRecord(m)) return this.drop('signaling', 'a signaling message that is not an object');
    // The server relays only this room's topic to this socket; y-webrtc handles nothing but publish.
    if (m.type !== 'publish' || m.topic !== this.opts.room) return;
    const room = this.room;
    // Until y-webrtc has derived its key it has no room and ignores everything.
    if (!room) return;
    if (!room.key) return this.passOn(m, stock, signalingProblem(m.data, room));
    // A device without the password publishes in the clear; y-webrtc ignores that (it cannot be one of ours).
    if (typeof m.data !== 'string') return;
    const data = m.data;
    const key = room.key;
    this.screening = this.screening
      .then(() => openSignal(data, key))
      .then(
        (opened) => this.passOn(m, stock, signalingProblem(opened, room)),
        (err: unknown) => this.drop('signaling', `a signaling message that does not decrypt with the room password (${errorText(err)})`),
      )
      .catch((err: unknown) => this.drop('signaling', errorText(err)));
  }

  /** Hands a screened message to y-webrtc's own handler, or drops it. */
  private passOn(m: SignalingMessage, stock: MessageListener, verdict: Verdict): void {
    if (this.destroyed || verdict === 'ignore') return;
    if (verdict !== 'ok') return this.drop('signaling', `a malformed signaling message (${verdict})`);
    try {
      stock(m);
    } catch (err) {
      this.drop('signaling', `a signaling message y-webrtc could not handle (${errorText(err)})`);
    }
  }

  /**
   * A peer message y-webrtc cannot read throws inside the data channel's handler: drop it, keep
   * the peer. Awareness entries naming this device or past the clock limit are dropped before
   * y-webrtc applies them (awareness-guard.ts). A document update (sync step 2 or update) with a
   * number past 2^53 - 1 is dropped whole (update-screen.ts: Yjs would encode it again forever),
   * reported once per peer. Sync step 1 is left alone: Yjs only compares its clocks with its own.
   * Awareness entries introducing a client past WEBRTC_MAX_CLIENTS_PER_PEER are dropped, reported
   * once per connection, as are states larger than `maxAwarenessBytes` (the client's earlier state,
   * if any, stays). A sync step 2 or update whose framing is broken breaks the connection
   * (breakPeer): from then on nothing from it is read.
   */
  private guardPeer(conn: WebrtcConnInternals): void {
    const peer = conn.peer;
    const emit = peer.emit.bind(peer);
    const awareness = this.opts.awareness;
    /** the clients this connection introduced (see WEBRTC_MAX_CLIENTS_PER_PEER) */
    const introduced = new Set<number>();
    /** the message being screened introduced a client past the cap, or carried a state over the size limit */
    let capped = false;
    let oversized = false;
    // NaN or <= 0 (a caller's mistake) would disable the bound: the default instead
    const maxBytes = this.opts.maxAwarenessBytes > 0 ? this.opts.maxAwarenessBytes : WEBRTC_MAX_AWARENESS_BYTES;
    const keep = (client: number, stateBytes: number): boolean => {
      if (stateBytes > maxBytes) return !(oversized = true);
      if (awareness.states.has(client) || introduced.has(client)) return true;
      if (introduced.size >= WEBRTC_MAX_CLIENTS_PER_PEER) return !(capped = true);
      introduced.add(client);
      return true;
    };
    peer.on('close', () => introduced.clear());
    peer.emit = (event, ...args) => {
      if (event !== 'data') return emit(event, ...args);
      if (this.broken.has(conn)) return true;
      const fault = args[0] instanceof Uint8Array ? syncFrameFault(args[0]) : undefined;
      if (fault !== undefined) {
        this.breakPeer(conn, fault);
        return true;
      }
      const refusal = syncMessageRefusal(args[0]);
      if (refusal !== undefined) {
        if (!this.refusedPeers.has(conn.remotePeerId)) {
          this.refusedPeers.add(conn.remotePeerId);
          this.drop('webrtc', `a document update from a WebRTC peer, not applied: ${refusal} (later ones from this peer are dropped unreported)`);
        }
        return true;
      }
      capped = false;
      oversized = false;
      // Clients whose state is gone here (removed, timed out) leave the count; those this message
      // introduces have no state yet, so this is done before the screen, not during it.
      if (introduced.size >= WEBRTC_MAX_CLIENTS_PER_PEER) for (const id of introduced) if (!awareness.states.has(id)) introduced.delete(id);
      const screened = screenAwarenessMessage(args[0], PEER_AWARENESS, awareness, keep);
      if (capped && !this.cappedPeers.has(conn)) {
        this.cappedPeers.add(conn);
        this.drop('webrtc', `awareness states from a WebRTC peer naming more than ${WEBRTC_MAX_CLIENTS_PER_PEER} clients new here (later ones from this peer are dropped unreported)`);
      }
      if (oversized && !this.oversizedPeers.has(conn)) {
        this.oversizedPeers.add(conn);
        this.drop('webrtc', `an awareness state over ${maxBytes} bytes from a WebRTC peer (later ones unreported)`);
      }
      try {
        return emit(event, ...(screened.message ? [screened.message, ...args.slice(1)] : args));
      } catch (err) {
        this.drop('webrtc', `a malformed message from a WebRTC peer (${errorText(err)})`);
        return true;
      } finally {
        reclaimOwnState(this.opts.awareness, screened.ownClaim);
      }
    };
  }

  /**
   * The peer sent a sync step 2 or update whose framing is broken (update-screen.ts
   * syncFrameFault): y-protocols would apply nothing inside its try (node_modules/y-protocols/sync.js
   * readSyncStep2), yet y-webrtc and this transport would count a step 2 as the peer's sync, and
   * pending.ts as the answer confirming this device's edits: the status could say nothing is
   * pending while no one else holds them. What the peer meant is unknown, so the connection is
   * broken: nothing more from it is read (so its pending channel, fed by what is read in
   * watchPeers, confirms nothing), it never counts as synced, and it is closed (y-webrtc announces us again; a connection from the same peer id is broken from the
   * start, watchPeers, and dropped as stuck after peerSyncTimeoutMs). Reported as a drop, not thrown.
   */
  private breakPeer(conn: WebrtcConnInternals, fault: string): void {
    if (this.broken.has(conn)) return;
    this.broken.add(conn);
    // bounded: past the cap the ids are forgotten (each then costs one more closed connection)
    if (this.brokenPeerIds.size >= MAX_BROKEN_PEER_IDS) this.brokenPeerIds.clear();
    this.brokenPeerIds.add(conn.remotePeerId);
    this.drop('webrtc', `${fault} from a WebRTC peer (broken framing): its connection closed`);
    this.opts.onChange();
    conn.peer.destroy();
  }

  /** Reports a dropped input: the first at once, then at most one report per source per DROP_REPORT_MS. */
  private drop(source: DroppedSource, message: string): void {
    if (this.destroyed) return;
    const now = Date.now();
    const seen = this.drops.get(source);
    if (seen && now - seen.reportedAt < DROP_REPORT_MS) {
      seen.unreported++;
      return;
    }
    const more = seen?.unreported ? ` (and ${seen.unreported} more dropped since the last report)` : '';
    this.drops.set(source, { reportedAt: now, unreported: 0 });
    this.opts.onDropped(source, `dropped ${message}${more}`);
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
    // lib0/websocket JSON.parses every frame in the socket's handler: a frame that is not JSON
    // (only the server can send one) would throw there.
    const onmessage = ws.onmessage;
    if (typeof onmessage === 'function') {
      ws.onmessage = (event) => {
        try {
          onmessage.call(ws, event);
        } catch (err) {
          this.drop('signaling', `a signaling frame that could not be read (${errorText(err)})`);
        }
      };
    }
    ws.addEventListener('close', (event) => {
      if (refusesToken(event.code)) this.gate.refused();
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
    if (!isRecord(m) || m.type !== 'publish' || m.topic !== this.opts.room) return;
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
      this.guardPeer(conn);
      if (this.brokenPeerIds.has(conn.remotePeerId)) this.broken.add(conn);
      if (room && this.yields(room, conn)) continue;
      const timers = [this.dropIfStuck(conn)];
      const changed = (): void => this.opts.onChange();
      const channel = this.opts.pending.open((frame) => conn.peer.send(frame));
      this.guardSend(conn, () => {
        channel.close();
        timers.push(this.dropIfStuck(conn));
        changed();
      });
      const heard = new HeardClients();
      this.heardClients.set(conn, heard);
      conn.peer.on('connect', changed);
      conn.peer.on('close', () => {
        channel.close();
        for (const timer of timers) this.forget(timer);
        changed();
      });
      conn.peer.on('data', (data) => {
        heard.noteMessage(data);
        const kind = syncKind(data);
        channel.heard(kind);
        if (this.synced.has(conn) || kind !== 'step2') return;
        this.synced.add(conn);
        this.forget(timers[0] as ReturnType<typeof setTimeout>);
        changed();
      });
    }
  }

  /**
   * A data channel carries a message only up to its SCTP max-message-size (256 KiB between
   * Chromium or libdatachannel peers, 64 KiB by default): send() throws on a bigger one, and
   * y-webrtc swallows that (sendWebrtcConn / broadcastWebrtcConn in
   * node_modules/y-webrtc/src/y-webrtc.js). A Yjs update cannot be split in general (one array
   * entry is one item), so such an update never reaches the peer over WebRTC; the peer then
   * holds every later update of ours as pending structs, and its sync step 2 would still
   * confirm it to pending.ts. Once a message to a connected peer is over the limit (or send
   * throws), the pair is `lost`: it confirms nothing more and no longer counts as synced, so
   * the relay connects and carries the update (its frame limit is the server's, 10 MiB by
   * default). The peer must be told too: if it got our sync step 2 it takes us as synced and
   * would not connect the relay, so the pair is closed at once (both sides then fall back to
   * the relay and meet again over WebRTC). If our step 2 was the message held back, the peer
   * never counted us synced: it connects the relay after its grace, and the pair is dropped
   * after `peerSyncTimeoutMs` (by either side), which paces re-meetings while the relay cannot
   * carry the update either. Before the channel opens nothing is checked: y-webrtc's sends fail
   * then anyway, and the sync exchange on open carries everything. Only sync messages (the
   * document) count: a presence message lost that way is stock behaviour (a later state replaces
   * it) and must not cost the device WebRTC.
   */
  private guardSend(conn: WebrtcConnInternals, onLost: () => void): void {
    const peer = conn.peer;
    const send = peer.send.bind(peer);
    let sentStep2 = false;
    const lose = (bytes: number, why: string): void => {
      if (this.lost.has(conn)) return;
      this.lost.add(conn);
      this.drop('webrtc', `a message of ${bytes} bytes to a WebRTC peer (${why}): the relay carries it`);
      onLost();
      if (sentStep2) peer.destroy();
    };
    peer.send = (data) => {
      if (!conn.connected || this.lost.has(conn) || !isSyncMessage(data)) return send(data);
      const limit = maxMessageBytes(peer);
      if (data.byteLength > limit) return lose(data.byteLength, `over the data channel's limit of ${limit} bytes`);
      try {
        send(data);
      } catch (err) {
        lose(data.byteLength, `send failed: ${errorText(err)}`);
        throw err;
      }
      if (!sentStep2 && syncKind(data) === 'step2') sentStep2 = true;
    };
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
      if (!this.isSynced(conn) && !conn.closed) conn.peer.destroy();
    }, ms);
    this.stuckTimers.add(timer);
    return timer;
  }

  private forget(timer: ReturnType<typeof setTimeout>): void {
    clearTimeout(timer);
    this.stuckTimers.delete(timer);
  }
}

type Verdict = 'ok' | 'ignore' | (string & {});

/** The largest message the peer connection's data channel takes (RTCSctpTransport.maxMessageSize; Infinity: no limit). */
function maxMessageBytes(peer: PeerInternals): number {
  const size = peer._pc?.sctp?.maxMessageSize;
  return typeof size === 'number' && size > 0 ? size : FALLBACK_MAX_MESSAGE_BYTES;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * What y-webrtc's handler would do with a publish's data (node_modules/y-webrtc/src/y-webrtc.js,
 * SignalingConn): 'ignore' what it skips (not addressed to us, from ourselves or a tab), 'ok' what
 * it handles without throwing, otherwise what is wrong. An answer from a device we have no
 * connection with (ours was dropped meanwhile, or a replay) would throw in y-webrtc: ignored.
 */
function signalingProblem(data: unknown, room: RoomInternals): Verdict {
  if (!isRecord(data)) return 'not an object';
  if (typeof data['from'] !== 'string') return 'no sender';
  const from = data['from'];
  if (from === room.peerId || (data['to'] !== undefined && data['to'] !== room.peerId) || room.bcConns.has(from)) return 'ignore';
  if (data['type'] === 'announce') return 'ok';
  if (data['type'] !== 'signal') return 'ignore';
  const signal = data['signal'];
  const problem = signalProblem(signal);
  if (problem) return problem;
  if ((signal as { type: string }).type === 'answer' && !room.webrtcConns.has(from)) return 'ignore';
  return 'ok';
}

const SIGNAL_FIELDS = ['sdp', 'candidate', 'renegotiate', 'transceiverRequest'] as const;

/** The signals simple-peer emits (and acts on in `signal()`), each carrying exactly its own field. */
function signalProblem(signal: unknown): string | undefined {
  if (!isRecord(signal)) return 'a signal that is not an object';
  const fields = SIGNAL_FIELDS.filter((f) => signal[f]);
  const only = (field: (typeof SIGNAL_FIELDS)[number]): boolean => fields.length === 1 && fields[0] === field;
  const candidate = signal['candidate'];
  const request = signal['transceiverRequest'];
  switch (signal['type']) {
    case 'offer':
    case 'answer':
      return only('sdp') && typeof signal['sdp'] === 'string' ? undefined : 'an offer or answer without SDP';
    case 'candidate':
      return only('candidate') &&
        isRecord(candidate) &&
        typeof candidate['candidate'] === 'string' &&
        (typeof candidate['sdpMid'] === 'string' || typeof candidate['sdpMLineIndex'] === 'number')
        ? undefined
        : 'a malformed ICE candidate';
    case 'renegotiate':
      return only('renegotiate') && signal['renegotiate'] === true ? undefined : 'a malformed renegotiation request';
    case 'transceiverRequest':
      return only('transceiverRequest') && isRecord(request) && typeof request['kind'] === 'string' ? undefined : 'a malformed transceiver request';
    default:
      return 'an unknown signal';
  }
}

/**
 * Decrypts a payload as y-webrtc's crypto.js would (base64 of varString 'AES-GCM' • varUint8Array
 * iv • varUint8Array ciphertext, then lib0 `readAny`); rejects whatever y-webrtc would fail on.
 */
async function openSignal(data: string, key: CryptoKey): Promise<unknown> {
  const decoder = decoding.createDecoder(fromBase64(data));
  if (decoding.readVarString(decoder) !== 'AES-GCM') throw new Error('unknown encryption algorithm');
  const iv = decoding.readVarUint8Array(decoder);
  const cipher = decoding.readVarUint8Array(decoder);
  const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: iv as Uint8Array<ArrayBuffer> }, key, cipher as Uint8Array<ArrayBuffer>);
  return decoding.readAny(decoding.createDecoder(new Uint8Array(plain)));
}
